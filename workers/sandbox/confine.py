"""Confining a sandboxed child: namespaces, mounts, CPU pinning (Linux system calls through
ctypes). Standard library only: loaded by path by workers/sandbox/warm_parent.py, like child.py.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
MS_RDONLY, MS_REMOUNT = 0x1, 0x20
# World-writable places: every child gets empty ones of its own.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# Unix sockets of local services (PostgreSQL, Redis, Docker, D-Bus) live under /run. A
# network namespace does not cover them, and a server that trusts local connections (a
# PostgreSQL with `local all all trust`) would let sandboxed code straight in: every
# sandboxed child gets an empty /run.
RUNTIME_DIRS = ("/run", "/var/run")
_libc = None


def sys_call(name: str, *args: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    # prctl is variadic: pass full-width arguments so the kernel sees zeros, not stack junk.
    if getattr(_libc, name)(*(ctypes.c_ulong(a) for a in args)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                   data.encode() or None) != 0:  # fmt: skip
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _hide_runtime_dirs() -> None:
    for folder in RUNTIME_DIRS:
        if os.path.isdir(folder) and not os.path.islink(folder):
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")


class ConfineError(OSError):
    """The child's file system view could not be set up (no CAP_SYS_ADMIN, say)."""


def can_traverse(info: os.stat_result, uid: int, gid: int) -> bool:
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def closed_folder(path: str, uid: int, gid: int) -> str | None:
    """The first folder on the way to `path` (itself excluded) that `uid` cannot traverse:
    /root (0700) for a pyenv interpreter, /home/ann (0750) for a checkout there."""
    folder = "/"
    for name in path.strip("/").split("/")[:-1]:
        try:
            info = os.stat(folder)
        except OSError:
            return None
        if not can_traverse(info, uid, gid):
            return folder
        folder = os.path.join(folder, name)
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return None if can_traverse(info, uid, gid) or folder == path else folder


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def confine_filesystem(
    *,
    uid: int,
    gid: int,
    read_only: list[str],
    writable: list[str],
    tmp_mb: int | None,
    hide: list[str] = (),
    app: bool = False,
) -> dict[str, list[str]]:
    """The child's own mount namespace (root in its user namespace; before dropping the uid):

    - /run and /var/run empty (local services' sockets);
    - /tmp, /var/tmp, /dev/shm and /run/lock empty: with `tmp_mb`, /tmp is a tmpfs of that
      many MB anyone may write (/var/tmp a folder of it, /dev/shm a small one), gone with
      the child's mount namespace: nothing of it touches the disk or outlives the child;
      without, all of them are empty tmpfs only root may write;
    - every folder on the way to a path the child needs that its uid cannot traverse (/root
      for a pyenv interpreter, a 0750 home for a checkout) covered by an empty tmpfs, and
      so are the folders in `hide` (the platform's storage and script cache: other
      challenges' scripts, annotations, other teams' files);
    - the paths it needs bound at their own place: `read_only` (the folders Python imports
      from, the staged inputs) read-only wherever they are, so even a child of the
      worker's own uid cannot rewrite what later children import; `writable` (its work
      folder) as it is.

    So the child reaches exactly what it imports and reads, and its work folder, wherever
    the interpreter or the checkout lives, and nothing else of those folders. Returns what
    was covered and bound (for the evaluation record). Raises ConfineError.
    """
    needed: dict[str, bool] = {}  # path: writable
    folders: set[str] = set()  # which of them are folders, asked before anything is covered
    for path, rw in [(p, False) for p in read_only] + [(p, True) for p in writable]:
        real = os.path.realpath(path)
        # Folders and plain files only (not /dev/null, which a remount `nodev` would break).
        if (os.path.isdir(real) or os.path.isfile(real)) and real != "/":
            needed[real] = needed.get(real, False) or rw
            if os.path.isdir(real):
                folders.add(real)
    try:
        sys_call("unshare", CLONE_NEWNS)
        _mount("none", "/", "", MS_REC | MS_PRIVATE)
        if os.getpid() == 1:  # PID 1 of its own PID namespace: a /proc of that namespace
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _hide_runtime_dirs()
    except OSError as exc:
        raise ConfineError(exc.errno, f"no mount namespace of its own: {exc.strerror}") from None
    covers = {folder for folder in SHARED_TMP if os.path.isdir(folder)}
    covers |= {os.path.realpath(f) for f in hide if os.path.isdir(f)} - {"/"}
    for path in needed:
        closed = closed_folder(path, uid, gid)
        if closed is not None and closed != "/":
            covers.add(closed)
    covers = {c for c in covers if not any(_under(c, o) and c != o for o in covers)}
    # Opened before anything is covered: mounted from /proc/self/fd/N afterwards.
    fds: dict[str, int] = {}
    try:
        for path in needed:
            fds[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        for cover in sorted(covers, key=len):
            if cover == "/tmp" and tmp_mb:
                _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
            elif cover == "/dev/shm" and tmp_mb:
                _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
            elif cover == "/var/tmp" and tmp_mb and "/tmp" in covers:
                os.makedirs("/tmp/.var-tmp", mode=0o1777, exist_ok=True)
                os.chmod("/tmp/.var-tmp", 0o1777)  # noqa: S103 - a /var/tmp: sticky, for all
                _mount("/tmp/.var-tmp", cover, "", MS_BIND)
            else:
                _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        bound = []
        for path in sorted(needed, key=len):  # outer first: a work folder inside stays rw
            inside_read_only = any(
                _under(path, other) and other != path and not needed[other] for other in needed
            )
            if any(_under(path, cover) for cover in covers):
                _mount_point(path, directory=path in folders)
            elif needed[path] and not inside_read_only:
                continue  # writable and visible as it is
            _mount(f"/proc/self/fd/{fds[path]}", path, "", MS_BIND | MS_REC)
            if not needed[path]:
                _mount("none", path, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            bound.append(path)
    except OSError as exc:
        raise ConfineError(exc.errno, f"cannot set up the sandbox's folders: {exc}") from None
    finally:
        for fd in fds.values():
            os.close(fd)
    made: dict[str, list[str]] = {"covered": sorted(covers), "bound": bound}
    if app:
        try:
            _app_folder(tmp_mb, [p for p in needed if _under(p, "/app") and p != "/app"])
            made["app"] = ["/app"]
        except OSError as exc:
            # Not fatal: the programs still get their folders through the command's
            # words (codalab_runtime.substitute); only hard-coded /app paths miss.
            made["app_error"] = [f"cannot set up /app: {exc}"]
    return made


def _app_folder(tmp_mb: int | None, needed: list[str]) -> None:
    """An empty, writable /app of the child's own (Codabench programs use the fixed
    /app/program, /app/input, /app/output; challenges.bundle.codalab_runtime links them).

    Where /app exists (the worker image's), a tmpfs covers it and the paths the child
    needs under it are bound back. Where it does not, nothing on the machine is made:
    the child gets a root of its own on its private /tmp, every top-level folder bound
    in (with what is mounted under it: the covers and read-only binds made above), /app
    added, and chroots into it."""
    size = f"size={tmp_mb or 64}m,mode=1777"
    if os.path.isdir("/app"):
        # Opened before the cover, as above: what was bound under /app (the interpreter,
        # when the platform lives there) is bound back, read-only.
        # So is what the child needs from there without a mount of its own (the platform's
        # checkout is /app in the worker image: a script cache or environment under it).
        fds = {
            p: os.open(p, os.O_PATH | os.O_CLOEXEC)
            for p in {*_mounts_under("/app"), *needed}
            if os.path.exists(p)
        }
        try:
            directories = {p for p in fds if os.path.isdir(p)}
            _mount("tmpfs", "/app", "tmpfs", MS_NOSUID | MS_NODEV, size)
            for path in sorted(fds, key=len):
                _mount_point(path, directory=path in directories)
                _mount(f"/proc/self/fd/{fds[path]}", path, "", MS_BIND | MS_REC)
                _mount("none", path, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        finally:
            for fd in fds.values():
                os.close(fd)
        return
    root = "/tmp/.evalserver-root"
    os.makedirs(root, mode=0o755, exist_ok=True)
    for name in sorted(os.listdir("/")):
        source = "/" + name
        if name in ("app",) or os.path.islink(source):
            if os.path.islink(source):  # /bin -> usr/bin on merged-/usr systems
                os.symlink(os.readlink(source), os.path.join(root, name))
            continue
        target = os.path.join(root, name)
        directory = os.path.isdir(source)
        if directory:
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(source, target, "", MS_BIND | MS_REC)
    os.makedirs(os.path.join(root, "app"), mode=0o755)
    _mount("tmpfs", os.path.join(root, "app"), "tmpfs", MS_NOSUID | MS_NODEV, size)
    os.chroot(root)
    os.chdir("/")


def _mounts_under(folder: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if _under(point, folder) and point != folder:
                found.append(point)
    return found


def _mount_point(path: str, *, directory: bool) -> None:
    """An empty folder or file at `path` inside a covering tmpfs, its parents 0755."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if directory:
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def import_roots() -> list[str]:
    """The folders Python imports from, outermost only."""
    found = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *sys.path) if p}
    found = sorted(p for p in found if os.path.isdir(p))
    return [p for p in found if not any(p.startswith(q + "/") for q in found if q != p)]


def enter_user_and_network_namespace() -> None:
    """Not root: a user namespace lets us make a network namespace. Map our own ids only."""
    uid, gid = os.geteuid(), os.getegid()
    sys_call("unshare", CLONE_NEWUSER | CLONE_NEWNET)
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        try:
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
        except OSError:
            pass


def pin_cpus(count: int, slot: int) -> None:
    """Pin to `count` of the cores allowed, starting at `slot` (modulo their number), so
    children of concurrent pool processes get different cores."""
    allowed = sorted(os.sched_getaffinity(0))
    first = slot % len(allowed)
    count = min(count, len(allowed))
    os.sched_setaffinity(0, {allowed[(first + i) % len(allowed)] for i in range(count)})
