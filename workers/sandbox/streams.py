"""The warm parent's side of its children's pipes and processes: the pre-forked child's
file descriptors, capped output, reading, draining and killing. Standard library only:
loaded by path by warm_parent.py, like child.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket


def vm_size_bytes() -> int:
    # Raw bytes, not a text file object: a sandboxed child asks this once, and every Python
    # object it touches on the way (io's classes, the codec) is a page it copies.
    fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 16384)
    finally:
        os.close(fd)
    at = data.find(b"\nVmSize:")
    return int(data[at + 8 : data.index(b"\n", at + 1)].split()[0]) * 1024 if at >= 0 else 0


class Standby:
    """A child forked ahead of the next request, so the fork is not on the request's path.

    Pipes: ctl (the request, parent to child), out and err (its stdout and stderr), info
    (child to parent: one line on its namespaces when ready, one line with its report)."""

    def __init__(self, pid, pid_namespace, ctl_w, out_r, err_r, info_r):
        self.pid, self.pid_namespace = pid, pid_namespace
        self.ctl_w, self.out_r, self.err_r, self.info_r = ctl_w, out_r, err_r, info_r
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None  # kernel < 5.3: poll with a short timeout instead

    def close(self) -> None:
        for fd in (self.ctl_w, self.out_r, self.err_r, self.info_r, self.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.ctl_w = self.out_r = self.err_r = self.info_r = self.pidfd = None


class Capture:
    """The first `cap` bytes of one of the child's output streams."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data, self.total = cap, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if len(self.data) < self.cap:
            self.data += chunk[: self.cap - len(self.data)]


def only_loopback() -> bool:
    try:
        return {name for _, name in socket.if_nameindex()} <= {"lo"}
    except OSError:
        return False


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def kill(pid: int) -> None:
    """Only for a child not yet reaped: once reaped, its pid may be someone else's."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    kill_group(pid)


def kill_group(pgid: int) -> None:
    # Safe after the leader is reaped: a process group's id is not reused while it has members.
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def reaped_status(pid: int):
    try:
        done, raw, usage = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        return (0, None)
    return (raw, usage) if done else None


def pump(fd: int, capture: Capture) -> bool:
    """Take what the child wrote; False at the end of the stream (or nothing more for now)."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return False
    capture.add(data)
    return bool(data)


def peer_closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def drain(fd: int) -> bytes:
    """What is left in a pipe whose writer has exited, without waiting for more."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(OSError):  # BlockingIOError: nothing more for now
        while chunk := os.read(fd, 65536):
            data += chunk
    return data


def read_line(fd: int) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return {}
