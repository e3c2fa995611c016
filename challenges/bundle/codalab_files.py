"""CodaLab/Codabench programs and data: a zip named in competition.yaml (or, as in source
repositories, a folder of the same name) read into memory, with the same caps and path
checks as the bundle itself; a program's `metadata` command; whether its Python compiles
under the interpreter it would get.

Used by challenges.bundle.codalab (spec, names, archive below it; nothing above).
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from dataclasses import dataclass, field

import yaml

from challenges.bundle.archive import Folder, MemberError
from challenges.bundle.names import is_junk, normalise_relative, sorted_names


def _(text: str) -> str:
    """gettext when Django is set up (the loader also runs without it: evaluate_local)."""
    try:
        from django.utils.translation import gettext

        return gettext(text)
    except Exception:
        return text


class FilesProblem(Exception):
    """Why a program or data set cannot be read: a message, and the file and line in it."""

    def __init__(self, message: str, file: str = "", line: int | None = None):
        super().__init__(message)
        self.message, self.file, self.line = message, file, line


@dataclass
class Program:
    source: str  # the name in competition.yaml, e.g. "scoring_program.zip"
    files: dict[str, bytes] = field(default_factory=dict)
    command: str = ""


def read_tree(folder: Folder, ref: str, cap: int) -> dict[str, bytes]:
    """The files of `ref` (a zip in the bundle, or a folder named like it), relative to
    their root: a single top folder inside the zip is stepped into, __MACOSX and
    .DS_Store left out. Raises FilesProblem naming what the bundle has instead."""
    rel = normalise_relative(ref.strip())
    if rel is None:
        raise FilesProblem(_("%(ref)r is not a path inside the bundle.") % {"ref": ref})
    rel = rel.rstrip("/")
    if folder.is_file(rel) and rel.lower().endswith(".zip"):
        if folder.size(rel) > cap:
            raise FilesProblem(
                _("%(ref)s is larger than the %(cap)s-byte limit.") % {"ref": ref, "cap": cap}
            )
        try:
            data = folder.read(rel, cap)
        except MemberError as exc:
            raise FilesProblem(str(exc)) from None
        return _strip_top(_unzip(data, cap, ref))
    stem = rel[:-4] if rel.lower().endswith(".zip") else rel
    for candidate in (rel, stem):
        if folder.is_dir(candidate):
            files: dict[str, bytes] = {}
            total = 0
            for name in folder.files_under(candidate):
                if is_junk(name):
                    continue
                inner = name[len(candidate) + 1 :]
                total += folder.size(name)
                if total > cap:
                    raise FilesProblem(
                        _("%(ref)s is larger than the %(cap)s-byte limit.")
                        % {"ref": ref, "cap": cap}
                    )
                files[inner] = folder.read(name, cap)
            return _strip_top(files)
    there = sorted_names(top_names(folder), limit=20)
    raise FilesProblem(
        _(
            "%(ref)s is not in the bundle (neither a zip nor a folder of that name); it has: %(there)s."
        )
        % {"ref": ref, "there": there or _("nothing")}
    )


def top_names(folder: Folder) -> set[str]:
    """The files and folders at the top of the config's folder, for "it has: ..." messages."""
    base = folder.base
    return {
        n[len(base) :].split("/", 1)[0] + ("/" if "/" in n[len(base) :] else "")
        for n in folder.archive.files
        if n.startswith(base) and not is_junk(n)
    }


def _unzip(data: bytes, cap: int, ref: str) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise FilesProblem(_("%(ref)s is not a zip file.") % {"ref": ref}) from None
    files: dict[str, bytes] = {}
    total = 0
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > 10_000:
            raise FilesProblem(_("%(ref)s has more than 10,000 files.") % {"ref": ref})
        for info in infos:
            name = normalise_relative(info.filename)
            if name is None:
                raise FilesProblem(
                    _("%(ref)s holds %(name)r, a path that leaves its folder.")
                    % {"ref": ref, "name": info.filename}
                )
            if is_junk(name):
                continue
            total += info.file_size
            if total > cap:
                raise FilesProblem(
                    _("%(ref)s unpacks to more than the %(cap)s-byte limit.")
                    % {"ref": ref, "cap": cap}
                )
            try:
                files[name] = zf.read(info)
            except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
                raise FilesProblem(
                    _("%(ref)s cannot be read: %(error)s.") % {"ref": ref, "error": exc}
                ) from None
    return files


def _strip_top(files: dict[str, bytes]) -> dict[str, bytes]:
    """A zip made of a folder (`zip -r scoring_program.zip scoring_program/`): step in."""
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        top = tops.pop()
        if not any(name.split("/", 1)[1] in ("metadata", "metadata.yaml") for name in files) and (
            f"{top}/metadata" not in files and f"{top}/metadata.yaml" not in files
        ):
            return files
        return {name[len(top) + 1 :]: content for name, content in files.items()}
    return files


def read_program(folder: Folder, ref: str, cap: int) -> Program:
    files = read_tree(folder, ref, cap)
    program = Program(source=ref, files=files)
    meta_name = next((n for n in ("metadata", "metadata.yaml", "metadata.yml") if n in files), None)
    if meta_name is None:
        raise FilesProblem(
            _(
                "%(ref)s has no metadata file with the command to run (a `metadata` or "
                "`metadata.yaml` at its top, e.g. `command: python $program/score.py $input "
                "$output`); it has: %(there)s."
            )
            % {"ref": ref, "there": sorted_names(files, limit=12) or _("no files")}
        )
    try:
        meta = yaml.safe_load(files[meta_name].decode("utf-8", "replace"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FilesProblem(
            _("Its metadata is not valid YAML: %(error)s") % {"error": exc},
            file=f"{ref}/{meta_name}",
            line=mark.line + 1 if mark else None,
        ) from None
    command = meta.get("command") if isinstance(meta, dict) else None
    if not isinstance(command, str) or not command.strip():
        raise FilesProblem(
            _("Its metadata has no `command:` to run."), file=f"{ref}/{meta_name}", line=None
        )
    program.command = command.strip()
    return program


_COMPILE_ALL = r"""
import sys, json
files = json.loads(sys.stdin.read())
for name in sorted(files):
    source = files[name]
    if sys.version_info[0] < 3:
        source = source.encode("utf-8")
    try:
        compile(source, name, "exec")
    except SyntaxError as exc:
        sys.stdout.write(json.dumps([name, exc.lineno, str(exc.msg)]))
        break
"""


def first_syntax_error(
    files: dict[str, bytes], interpreter: str | None
) -> tuple[str, int | None, str] | None:
    """(file, line, message) of the first .py that does not compile under `interpreter`
    (None: this one, Python 3), or None when all do."""
    sources = {
        name: content.decode("utf-8", "replace")
        for name, content in files.items()
        if name.endswith(".py")
    }
    if interpreter is None:
        for name in sorted(sources):
            try:
                compile(sources[name], name, "exec", dont_inherit=True)
            except SyntaxError as exc:
                return name, exc.lineno, str(exc.msg)
            except ValueError as exc:  # null bytes
                return name, None, str(exc)
        return None
    try:
        done = subprocess.run(
            [interpreter, "-c", _COMPILE_ALL],
            input=json.dumps(sources).encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FilesProblem(
            _("The interpreter %(python)s cannot be run: %(error)s.")
            % {"python": interpreter, "error": exc}
        ) from None
    if done.returncode != 0:
        raise FilesProblem(
            _("The interpreter %(python)s failed: %(error)s.")
            % {"python": interpreter, "error": done.stderr.decode("utf-8", "replace")[-300:]}
        )
    if not done.stdout.strip():
        return None
    name, line, message = json.loads(done.stdout)
    return name, line, message
