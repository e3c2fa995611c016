"""What a child of the warm parent does once forked: set up what does not depend on the
request (its process group, its output, its network namespace), wait for the request, then
limit and confine itself, drop to the sandbox uid and call evaluate(). Standard library
only: loaded by path by warm_parent.py, like child.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys


def _sibling(name: str):
    """A module of this folder as warm_parent.py loaded it. Only warm_parent.py loads this
    module, by path with its _load, and it loads these siblings first: one loader, so each
    sibling is one object in the warm parent and its children."""
    return sys.modules[f"_evalserver_{name}"]


_child_module = _sibling("child")
_confine_module = _sibling("confine")
streams = _sibling("streams")
Limits = _sibling("limits").Limits
call_evaluate, finish_report = _child_module.call_evaluate, _child_module.finish_report
_sys = _confine_module.sys_call
CLONE_NEWNET = _confine_module.CLONE_NEWNET
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = (
    _confine_module.PR_SET_PDEATHSIG,
    _confine_module.PR_SET_DUMPABLE,
)
PR_SET_NO_NEW_PRIVS = _confine_module.PR_SET_NO_NEW_PRIVS

MAX_LEARNED = 2000  # modules a warm parent imports on its children's behalf, at most


class ImportRecorder:
    """First on the child's sys.meta_path, finding nothing itself: the import system asks
    it about every module the process does not have yet, so it learns what the evaluation
    imported without comparing the whole of sys.modules before and after. (That compare
    touched every module's name, and so copied each page holding one: about 750 pages,
    2 ms of a child's CPU, for a list that is nearly always empty.)"""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name, path=None, target=None):
        # A loose bound: failed lookups (a script probing optional modules) count here,
        # and must not use up the MAX_LEARNED that imported() keeps of what did import.
        if len(self.names) < 8 * MAX_LEARNED:
            self.names.append(name)
        return None  # the next finders do the import

    def imported(self) -> list[str]:
        """The names asked about that were imported (a failed import is not)."""
        found = [name for name in dict.fromkeys(self.names) if name in sys.modules]
        return found[:MAX_LEARNED]


def run(
    ctl_r: int, out_w: int, err_w: int, info_w: int, *, evaluate, roots, root, shared_net
) -> None:
    """In the pre-forked child: set up what does not depend on the request, then wait."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _sys("prctl", PR_SET_PDEATHSIG, signal.SIGKILL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (null, out_w, err_w):
        os.close(fd)
    info = {"network_isolated": False}
    try:
        if shared_net:
            pass  # the warm parent's own: nothing but a loopback that is down
        elif root:
            _sys("unshare", CLONE_NEWNET)
        else:
            _confine_module.enter_user_and_network_namespace()
        info["network_isolated"] = True
    except OSError as exc:
        info["why"] = str(exc)
    streams.write_all(info_w, json.dumps(info).encode() + b"\n")
    chunks = []
    while chunk := os.read(ctl_r, 65536):
        chunks.append(chunk)
    if not chunks:
        os._exit(0)  # the parent is shutting down
    os.close(ctl_r)
    _evaluate(json.loads(b"".join(chunks)), info_w, evaluate, roots)


def _evaluate(msg: dict, report_fd: int, evaluate, roots: list[str]) -> None:
    limits, uid = Limits.from_message(msg["limits"]), msg.get("uid")
    me = os.getpid()
    # RLIMIT_AS caps the whole address space, and this child starts with everything the
    # warm parent mapped: the interpreter and the script's libraries (pandas + sklearn
    # alone reserve hundreds of MB of virtual memory). So the phase's memory_mb is what
    # evaluate() may add on top of what is mapped now: VmSize at this point + memory_mb.
    memory = streams.vm_size_bytes() + limits.memory_mb * 1024 * 1024
    cpu = limits.cpu_limit_s + 1
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    # numpy's global seed: the warm parent drew a new one just before forking this child
    # (warm_parent.Server._spawn); Python's `random` reseeds itself in every forked child.
    if limits.cpus:
        _confine_module.pin_cpus(limits.cpus, int(msg.get("cpu_slot") or 0))
    filesystem = _confine(msg, uid, roots)
    if "error" in filesystem and msg.get("strict"):
        # Untrusted code (a participant's model) never runs without its own view of the
        # file system: local services' sockets under /run, other files.
        report = {
            "ok": False,
            "kind": "sandbox",
            "error": f"the sandbox could not hide the machine's files: {filesystem['error']}",
            "filesystem": filesystem,
        }
        streams.write_all(report_fd, finish_report(report) + b"\n")
        os._exit(0)
    work = msg["work"]
    if work is None:
        # Its own folder in its own /tmp (a tmpfs that goes with its mount namespace);
        # without one, on the machine's, at a path the warm parent removes afterwards.
        work = msg["fallback_work"] if "error" in filesystem else "/tmp/evalserver-work"
        os.mkdir(work, 0o700)
        if uid is not None:
            os.chown(work, uid, uid)
    if limits.max_file_mb:
        size = limits.max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _sys("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    # Changing uid cleared the parent-death signal; the parent is the warm server.
    _sys("prctl", PR_SET_PDEATHSIG, signal.SIGKILL)
    # Not dumpable: another child of the same uid cannot read this one's memory through
    # /proc or ptrace (the script or model may turn it back on for itself only).
    _sys("prctl", PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.chdir(work)
    os.environ["HOME"] = os.environ["TMPDIR"] = work
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    recorder = None
    if msg.get("learn"):
        recorder = ImportRecorder()
        sys.meta_path.insert(0, recorder)
    report = call_evaluate(evaluate, msg["request"])
    if os.getpid() != me:
        os._exit(0)  # a process the script forked came back through here
    report["filesystem"] = filesystem
    if recorder is not None:
        # What this evaluation imported that the warm parent lacks: it imports those
        # (warm_parent.Server._learn), so the next children start with them.
        report["imported"] = recorder.imported()
    # The same report the cold child writes to its file, as one line to the parent.
    streams.write_all(report_fd, finish_report(report) + b"\n")
    os._exit(0)


def _confine(msg: dict, uid: int | None, roots: list[str]) -> dict:
    """The child's own view of the file system (confine.confine_filesystem): what it
    imports from and the inputs it was given, read-only; its work folder; a /tmp of its
    own. Not root: inside the user namespace made at fork, where the kernel allows it."""
    try:
        return _confine_module.confine_filesystem(
            uid=uid if uid is not None else os.geteuid(),
            gid=uid if uid is not None else os.getegid(),
            read_only=[*roots, *msg.get("expose", ())],
            writable=[msg["work"]] if msg["work"] else [],
            tmp_mb=msg.get("tmp_mb"),
            hide=msg.get("hide", ()),
            app=bool(msg.get("app")),
        )
    except OSError as exc:
        # The worker's self-check (workers.sandbox.selfcheck) refuses to start when this leaves
        # a child unable to import; here it only costs the private /tmp.
        return {"error": str(exc)}
