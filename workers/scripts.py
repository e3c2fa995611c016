"""Per-machine cache of what workers fetch from storage: evaluation scripts, unpacked once
per (challenge, script version), and stored files (annotations, features, submissions,
models), kept by sha256 so that a worker needs no disk shared with the web.

Stored files live in EVALUATION_CACHE_DIR/blobs, one file per (sha256, name), checked against
the sha256 recorded when the file was written (a mismatch is refused and fetched again),
evicted least recently used (access time, set on every use) once the folder passes
EVALUATION_CACHE_MAX_BYTES. Several worker processes share the folder: a fetch writes a
temporary file and renames it into place under a per-file lock, and a file in use (held
by `cached()`) is never evicted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from challenges.models import EvaluationScript
from challenges.services.storage import CHUNK, open_stored, safe_basename, sha256_stream
from workers.sandbox.runner import SANDBOX_UID, extract_script

log = logging.getLogger(__name__)


class StoredFileMismatch(Exception):
    """A stored file's bytes are not the ones recorded when it was written."""


@dataclass(frozen=True)
class Stored:
    """A file in storage: its storage name and the sha256 recorded when it was written
    (blank for rows older than the record; such a file is fetched but cannot be checked)."""

    name: str
    sha256: str = ""


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
        with (
            cached(Stored(script.archive.name, script.archive_sha256)) as local,
            local.open("rb") as archive,
        ):
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
    # A cached file is in the root-only blob folder (0700): never readable as it is, and
    # no need to look (a stat of every folder on its way, per file, per evaluation).
    blobs = cache_root() / "blobs"
    try:
        readable = []
        for path in map(Path, paths):
            if path.parent != blobs and _world_readable(path):
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
    else:
        if path.parent == blob_root():
            # A cached file is 0444 in a root-only folder and may be linked into a model's
            # folder too: its mode is shared by every link, so it stays as it is.
            return
    if os.geteuid() == 0:
        os.chown(target, -1, SANDBOX_UID)
        target.chmod(0o640)
    else:
        target.chmod(0o644)


# ---------------------------------------------------------------- stored files


def blob_root() -> Path:
    """Root only: files reach the sandbox through hard links in `staged()` or a model's
    folder, never through this folder (children see EVALUATION_CACHE_DIR covered anyway)."""
    root = cache_root() / "blobs"
    if not (root / ".locks").is_dir():  # the last made: the folder is ready once it is there
        (root / ".locks").mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)
    return root


@contextlib.contextmanager
def cached(stored: Stored) -> Iterator[Path]:
    """`stored` as a local file, fetched from storage unless the cache holds it already;
    checked against its sha256 when fetched, and by each process again whenever the cached
    file is not the one it checked last (another inode, size or modification time): a
    corrupted or altered copy is fetched again.
    The file is read-only (0444 in a root-only folder) and is not evicted while in use here:
    link it (`staged()`, a model's folder) before this context ends."""
    if not stored.sha256:
        # Nothing to key it by or check it against: a private copy, gone afterwards.
        path = blob_root() / f".unchecked-{uuid.uuid4().hex}-{safe_basename(stored.name)}"
        try:
            _download(stored, path)
            yield path
        finally:
            path.unlink(missing_ok=True)
        return
    root = blob_root()
    target = root / f"{stored.sha256}-{safe_basename(stored.name)}"
    lock_path = root / ".locks" / target.name
    fetched = 0
    for _ in range(5):
        with lock_path.open("a") as lock:
            # Shared while in use: evictors take the lock exclusively and skip busy files.
            if not _flock(lock, lock_path, fcntl.LOCK_SH):
                continue
            if not _intact(target, stored.sha256):
                # One fetch per file; the others wait for it. Turning a shared lock into an
                # exclusive one (and back) lets go of it for a moment: an evictor may have
                # taken the file, and its lock file, meanwhile; then start again.
                if not _flock(lock, lock_path, fcntl.LOCK_EX):
                    continue
                if not _intact(target, stored.sha256):
                    _download(stored, target)
                    fetched += target.stat().st_size
                if not _flock(lock, lock_path, fcntl.LOCK_SH) or not target.exists():
                    continue
            _touch(target)  # most recently used
            try:
                yield target
            finally:
                _touch(target)  # and used until now
            break
    else:
        raise RuntimeError(f"{stored.name} was evicted from the cache five times in a row")
    _grew(fetched, keep=target)


def _flock(lock, lock_path: Path, mode: int) -> bool:
    """Lock `lock` (the open lock file); False if it is no longer the file at `lock_path`:
    an evictor removed it with its blob while we waited, and a lock on it now keeps no
    one out. The caller opens the lock file again."""
    fcntl.flock(lock, mode)
    try:
        return os.fstat(lock.fileno()).st_ino == os.stat(lock_path).st_ino
    except FileNotFoundError:
        return False


_grown = 0  # bytes this process has fetched since it last looked at the cache's size


def _grew(size: int, *, keep: Path) -> None:
    """Look at the cache's size (a listing of the folder) once this process has added a
    twentieth of the bound since it last did, not after every fetch: the folder may hold
    many thousand submissions. The bound may so be passed by that much per process."""
    global _grown
    _grown += size
    if size and _grown >= settings.EVALUATION_CACHE_MAX_BYTES // 20:
        _grown = 0
        evict(keep=keep)


def _touch(path: Path) -> None:
    """Recency is the access time, set here; the modification time stays what it was, as
    part of the stamp `_intact` trusts."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))


# Files this process has hashed, by path: (inode, size, mtime) when the hash matched. A
# file written since (a new inode, or new bytes: a new mtime) is hashed again; one that
# is not is not read whole again for every model of a round.
_verified: dict[str, tuple[int, int, int]] = {}


@contextlib.contextmanager
def local_files(*items: Stored | Path | str) -> Iterator[list[Path]]:
    """Each item as a local path: a `Stored` file through `cached()`, a path as it is."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(cached(item)) if isinstance(item, Stored) else Path(item)
            for item in items
        ]


def stored(field, sha256: str) -> Stored | None:
    """A model's FileField (and the sha256 recorded beside it) as a `Stored`; None if empty."""
    return Stored(field.name, sha256) if field else None


def _intact(target: Path, sha256: str) -> bool:
    try:
        info = target.stat()
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if _verified.get(str(target)) == stamp:
            return True
        actual = _sha256_of(target)
    except FileNotFoundError:
        return False
    if actual == sha256:
        _verified[str(target)] = stamp
        return True
    log.warning("cached %s has sha256 %s; fetching it again", target.name, actual)
    return False


def _download(stored: Stored, target: Path) -> None:
    """Stream `stored` into `target` through a temporary file renamed into place, checking
    its sha256 on the way; refuse (StoredFileMismatch) bytes that are not the recorded ones."""
    fd, temporary = tempfile.mkstemp(prefix=".fetch-", dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, _open_stored(stored.name) as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if stored.sha256 and digest.hexdigest() != stored.sha256:
            raise StoredFileMismatch(
                f"The stored file {stored.name} has sha256 {digest.hexdigest()}, not the "
                f"{stored.sha256} recorded when it was written: it was changed or damaged in "
                "storage. Upload it again."
            )
        os.chmod(temporary, 0o444)
        os.replace(temporary, target)
        info = target.stat()
        _verified[str(target)] = (info.st_ino, info.st_size, info.st_mtime_ns)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return sha256_stream(stream)[0]


_open_stored = open_stored  # (the tests count fetches and hashes through these names)


def evict(*, keep: Path | None = None) -> int:
    """Remove least recently used files until the cache holds EVALUATION_CACHE_MAX_BYTES at
    most; files in use (locked by `cached()`) and `keep` stay. Returns the bytes removed."""
    root = blob_root()
    limit = settings.EVALUATION_CACHE_MAX_BYTES
    entries, total = [], 0
    for entry in os.scandir(root):
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if entry.name.startswith((".fetch-", ".unchecked-")):
            # Left by a killed fetch: old ones go, and they count meanwhile.
            if time.time() - info.st_mtime > 3600:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                continue
            total += info.st_size
            continue
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        entries.append((info.st_atime, entry.name, info.st_size))
        total += info.st_size
    removed = 0
    for _mtime, name, size in sorted(entries):
        if total <= limit:
            break
        if keep is not None and name == keep.name:
            continue
        with _held_alone(root / ".locks" / name) as held:
            if not held:
                continue
            with contextlib.suppress(FileNotFoundError):
                (root / name).unlink()
                total -= size
                removed += size
            _unlink_lock(root / ".locks" / name)
    # Lock files of blobs that are gone (a fetch that failed), unless someone holds them.
    listed = {name for _atime, name, _size in entries}
    for entry in os.scandir(root / ".locks"):
        if entry.name in listed or (root / entry.name).exists():
            continue
        with _held_alone(Path(entry.path)) as held:
            if held and not (root / entry.name).exists():
                _unlink_lock(Path(entry.path))
    return removed


@contextlib.contextmanager
def _held_alone(lock_path: Path) -> Iterator[bool]:
    """Whether this process holds the lock file at `lock_path` exclusively now (False: a
    file in use, or a lock file another evictor removed meanwhile), until the block ends."""
    with lock_path.open("a") as lock:
        try:
            held = _flock(lock, lock_path, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            held = False
        yield held


def _unlink_lock(lock_path: Path) -> None:
    # The lock file goes with its blob (one per file ever cached would pile up: each
    # submission is one), while still held: a process waiting on it finds it is no longer
    # the file at its path (`_flock`) and opens a new one.
    with contextlib.suppress(FileNotFoundError):
        lock_path.unlink()
