"""Confining a sandboxed child: namespaces, mounts, CPU pinning (Linux system calls through
ctypes). Standard library only: loaded by path by workers/warm_parent.py, like child.py.
"""

from __future__ import annotations

import ctypes
import os
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
# World-writable places: a participant's model gets empty ones nobody but root may write.
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


def hide_local_sockets() -> None:
    """A mount namespace of the child's own in which /run is empty. Root only; before
    dropping the uid."""
    sys_call("unshare", CLONE_NEWNS)
    _mount("none", "/", "", MS_REC | MS_PRIVATE)
    _hide_runtime_dirs()


def private_mounts(work: str) -> None:
    """A mount namespace of the child's own where /tmp, /var/tmp, /dev/shm and /run/lock are
    empty and writable by root only, so the only folder it may write is `work` (bound back
    at its own path when it lies under one of them), and where /proc shows only its own PID
    namespace. Root only; before dropping the uid."""
    sys_call("unshare", CLONE_NEWNS)
    _mount("none", "/", "", MS_REC | MS_PRIVATE)
    if os.getpid() == 1:  # PID 1 of its own PID namespace: a /proc of that namespace
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _hide_runtime_dirs()
    keep = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    # The interpreter and its packages may live under one of those folders too (a checkout
    # in /tmp with its .venv): they come back, read-only, or lazy imports would fail.
    roots = {
        root: os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        for root in _import_roots()
        if any(root.startswith(folder.rstrip("/") + "/") for folder in SHARED_TMP)
    }
    try:
        for folder in SHARED_TMP:
            if not os.path.isdir(folder):
                continue
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
            inside = folder.rstrip("/") + "/"
            for root, fd in roots.items():
                if root.startswith(inside):
                    os.makedirs(root, mode=0o755, exist_ok=True)
                    _mount(f"/proc/self/fd/{fd}", root, "", MS_BIND)
                    _mount("none", root, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
            if work.startswith(inside):
                os.makedirs(work, mode=0o755, exist_ok=True)
                _mount(f"/proc/self/fd/{keep}", work, "", MS_BIND)
    finally:
        os.close(keep)
        for fd in roots.values():
            os.close(fd)


def _import_roots() -> list[str]:
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
