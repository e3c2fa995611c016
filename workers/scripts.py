"""Per-machine cache of evaluation scripts, unpacked once per (challenge, script version)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from challenges.models import EvaluationScript
from workers.runner import SANDBOX_UID, extract_script


def cache_root() -> Path:
    return Path(settings.EVALUATION_CACHE_DIR)


def script_root_for(script: EvaluationScript) -> Path:
    """The folder holding `evaluation_script/` for this version; unpacked on first use.

    Several worker processes may race here: each unpacks into its own temporary folder
    and renames it into place; the loser throws its copy away.
    """
    target = (
        cache_root() / "scripts" / f"c{script.challenge_id}-v{script.version}-{script.sha256[:16]}"
    )
    if (target / "evaluation_script" / "__init__.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with script.archive.open("rb") as archive:
            extract_script(archive, staging)
        staging.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "evaluation_script" / "__init__.py").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _world_readable(path: Path) -> bool:
    """Can an unprivileged user (the sandbox's) open `path`? Checks every folder on the way."""
    path = path.resolve()
    try:
        if not path.stat().st_mode & 0o004:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in path.parents)
    except OSError:
        return False


def sandbox_readable(path: Path | str, staging: Path) -> Path:
    """`path` itself when the sandbox user can read it; otherwise a read-only hard link
    (or, across file systems, a copy) in `staging`, keeping the file's name and extension.

    As root, readable by the sandbox's group only (0640, group SANDBOX_UID): a hard link
    shares the stored file's mode, and participants' models (another uid) must not read it.
    """
    path = Path(path)
    if _world_readable(path):
        return path
    staging.mkdir(parents=True, exist_ok=True)
    staging.chmod(0o755)
    target = staging / path.name
    _link_or_copy(path, target)
    return target


def _staging_folder() -> Path:
    """One folder per machine for staged inputs, made once: evaluate()'s group may pass
    through it (as root), models' uid may not. Per evaluation only files come and go in it: making
    and removing folders costs milliseconds on a disk mounted with `discard`."""
    folder = cache_root() / "staged"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(folder, 0, SANDBOX_UID)
        # Enter, not list: a child finds only the files it is given by their random names
        # (and children see this folder covered anyway, but for those files).
        folder.chmod(0o710 if os.geteuid() == 0 else 0o711)
    return folder


@contextlib.contextmanager
def staged(*paths: Path | str) -> Iterator[list[Path]]:
    """Each path as evaluate()'s uid can read it: itself when it can already, else a
    read-only hard link (or copy) in the staging folder, named `<nonce>-<name>` (so the
    extension stays), removed afterwards."""
    made: list[Path] = []
    try:
        readable = []
        for path in map(Path, paths):
            if _world_readable(path):
                readable.append(path)
                continue
            target = _staging_folder() / f"{uuid.uuid4().hex[:12]}-{path.name}"
            made.append(target)
            _link_or_copy(path, target)
            readable.append(target)
        yield readable
    finally:
        for target in made:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()


def _link_or_copy(path: Path, target: Path) -> None:
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    if os.geteuid() == 0:
        os.chown(target, -1, SANDBOX_UID)
        target.chmod(0o640)
    else:
        target.chmod(0o644)
