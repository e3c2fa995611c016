"""The evaluation script of a bundle: a nested zip or a folder holding a Python package.

The package is read into memory (it is capped by `Limits.max_script_bytes`) and
inspected with `ast`; it is never imported here. Part of `challenges.bundle`.
"""

from __future__ import annotations

import ast
import hashlib
import io
from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _

from challenges.bundle.archive import Folder, MemberError, open_archive
from challenges.bundle.names import MIB, human_bytes, normalise_relative, show
from challenges.bundle.spec import EvaluationScriptSpec, Limits, Problem
from challenges.bundle.values import short

# report(severity, message, file=None, line=None, column=None); file None means the
# config's `evaluation_script` key.
Report = Callable[..., None]

_SKIPPED_FOLDERS = {"__pycache__", "__MACOSX", ".git", ".ipynb_checkpoints", ".pytest_cache"}
_SKIPPED_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_MAX_ANALYSED_INIT_BYTES = 5 * MIB


def skipped(path: str) -> bool:
    """Build debris that is not part of the package and must not change its hash."""
    parts = path.split("/")
    name = parts[-1]
    return (
        any(p in _SKIPPED_FOLDERS for p in parts[:-1])
        or name in _SKIPPED_FILES
        or name.startswith("._")
        or name.endswith((".pyc", ".pyo"))
    )


def script_sha256(files: dict[str, bytes]) -> str:
    """Over sorted (path, content) pairs, length-prefixed: zip order, dates and
    compression do not change it, and no two different packages share it."""
    digest = hashlib.sha256()
    for path in sorted(files):
        name = path.encode("utf-8", "surrogatepass")
        content = files[path]
        digest.update(len(name).to_bytes(8, "big"))
        digest.update(name)
        digest.update(len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.hexdigest()


def load_script(
    folder: Folder, value: str, *, limits: Limits, report: Report
) -> EvaluationScriptSpec | None:
    rel = normalise_relative(value)
    if rel is None:
        report(
            "error",
            _("must be a path inside the bundle, like evaluation_script.zip, not %(value)s.")
            % {"value": short(value)},
        )
        return None
    kind = _kind(folder, rel)
    if kind is None:
        alternative = rel[:-4] if rel.lower().endswith(".zip") else rel + ".zip"
        kind = _kind(folder, alternative)
        if kind is None:
            report(
                "error",
                _(
                    "names %(value)s, which is not in the zip%(hint)s. Put evaluation_script.zip (your evaluation package, with __init__.py at its root) or an evaluation_script/ folder next to the config, and name it here."
                )
                % {"value": short(value), "hint": folder.hint(rel)},
            )
            return None
        shown = alternative + ("/" if kind == "folder" else "")
        report(
            "warning",
            _("names %(value)s, which is not in the zip; %(shown)s is used instead.")
            % {"value": short(value), "shown": repr(shown)},
        )
        rel = alternative
    if kind == "zip":
        found = _from_zip(folder, rel, limits, report)
        source = rel
    else:
        found = _from_folder(folder, rel, limits, report)
        source = rel + "/"
    if found is None:
        return None
    files, where = found
    if not files:
        report(
            "error",
            _("%(where)s holds no files; it must hold your evaluation package.")
            % {"where": show(where)},
            file=where,
        )
        return None
    root = _package_root(files)
    if root is None:
        inits = sorted(n for n in files if n.rsplit("/", 1)[-1] == "__init__.py")
        found_inits = (
            " "
            + _("(found %(names)s: zip the package folder's contents)")
            % {"names": ", ".join(inits[:3])}
            if inits
            else ""
        )
        report(
            "error",
            _(
                "%(where)s has no __init__.py at its root%(found_inits)s. The evaluation script is imported as a package: add __init__.py containing `from .main import evaluate`."
            )
            % {"where": show(where), "found_inits": found_inits},
            file=where,
        )
        return None
    files = {name[len(root) :]: data for name, data in files.items() if name.startswith(root)}
    _check_init(files["__init__.py"], f"{where}/{root}__init__.py", report)
    requirements = files.get("requirements.txt")
    return EvaluationScriptSpec(
        files=dict(sorted(files.items())),
        sha256=script_sha256(files),
        requirements=None
        if requirements is None
        else requirements.decode("utf-8-sig", errors="replace"),
        source=source,
    )


def _kind(folder: Folder, rel: str) -> str | None:
    if folder.is_file(rel):
        return "zip"
    if folder.is_dir(rel) and folder.files_under(rel):
        return "folder"
    return None


def _from_zip(
    folder: Folder, rel: str, limits: Limits, report: Report
) -> tuple[dict[str, bytes], str] | None:
    where = folder.where(rel)
    # A zip of the package may be a little larger than the package itself.
    try:
        data = folder.read(rel, limits.max_script_bytes + MIB)
    except MemberError as exc:
        report("error", str(exc), file=where)
        return None
    nested: list[Problem] = []
    inner = open_archive(
        io.BytesIO(data),
        limits=limits,
        problems=nested,
        label=where,
        total_cap=limits.max_script_bytes,
        member_cap=min(limits.max_member_bytes, limits.max_script_bytes),
    )
    if inner is None:
        for problem in nested:
            report(problem.severity, problem.message, file=problem.file or where)
        return None
    try:
        files = {}
        for name in sorted(inner.files):
            if not skipped(name):
                files[name] = inner.read(name, limits.max_script_bytes)
    except MemberError as exc:
        report("error", str(exc), file=where)
        return None
    finally:
        inner.close()
    return files, where


def _from_folder(
    folder: Folder, rel: str, limits: Limits, report: Report
) -> tuple[dict[str, bytes], str] | None:
    where = folder.where(rel)
    prefix = rel + "/"
    names = [n for n in folder.files_under(rel) if not skipped(n[len(prefix) :])]
    total = sum(folder.size(n) for n in names)
    if total > limits.max_script_bytes:
        report(
            "error",
            _(
                "The evaluation script folder %(where)s holds %(total)s, over the %(cap)s limit; keep data files out of it."
            )
            % {
                "where": show(where),
                "total": human_bytes(total),
                "cap": human_bytes(limits.max_script_bytes),
            },
            file=where,
        )
        return None
    try:
        files = {n[len(prefix) :]: folder.read(n, limits.max_script_bytes) for n in names}
    except MemberError as exc:
        report("error", str(exc), file=where)
        return None
    return files, where


def _package_root(files: dict[str, bytes]) -> str | None:
    """ "" when __init__.py is at the top, "folder/" when the host zipped the folder itself."""
    if "__init__.py" in files:
        return ""
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        top = tops.pop()
        if f"{top}/__init__.py" in files:
            return top + "/"
    return None


def _check_init(source: bytes, where: str, report: Report) -> None:
    if len(source) > _MAX_ANALYSED_INIT_BYTES:
        return
    try:
        tree = ast.parse(source, filename="__init__.py")
    except SyntaxError as exc:
        report(
            "error",
            _("__init__.py is not valid Python: %(msg)s.") % {"msg": exc.msg},
            file=where,
            line=exc.lineno,
            column=exc.offset,
        )
        return
    except (ValueError, RecursionError, MemoryError) as exc:
        report(
            "error",
            _("__init__.py could not be parsed as Python (%(exc)s).") % {"exc": exc},
            file=where,
        )
        return
    if not _exposes_evaluate(tree):
        report(
            "warning",
            _(
                "__init__.py neither defines nor imports evaluate(), which the worker calls. Add `from .main import evaluate` (or define evaluate in __init__.py)."
            ),
            file=where,
        )


def _exposes_evaluate(tree: ast.Module) -> bool:
    """A module-level `def evaluate`, `from .x import evaluate`, a star import or an assignment."""
    stack: list[Any] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == "evaluate":
                return True
            continue
        if isinstance(node, ast.ImportFrom):
            if any(a.name == "*" or (a.asname or a.name) == "evaluate" for a in node.names):
                return True
        elif isinstance(node, ast.Import):
            if any((a.asname or a.name.split(".")[0]) == "evaluate" for a in node.names):
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
                if any(isinstance(n, ast.Name) and n.id == "evaluate" for n in names):
                    return True
        # Definitions under `if`/`try`/`with` count too; function bodies do not.
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case)
        )
    return False
