"""The warm parent of one script version (started by workers.forkserver): import the script
once, then for each request read from the socket, hand it to a child forked ahead of time
that limits itself, drops to the sandbox uid and calls evaluate(). Standard library only,
run by path with `python -I` and an empty environment, like child.py, whose functions it
shares.

    warm_parent.py FD SCRIPT_ROOT MODULE PARENT_PID

Protocol on the socket FD, one JSON object per line: the parent says hello (ready, or the
script's import error); then each request (`request` for evaluate(), `work`, `uid`,
`limits` as workers/limits.py's Limits, `cpu_slot`, `expose`: files to bind read-only,
`tmp`: the child's own /tmp and /var/tmp or null) gets one reply (the child's `report` or null, its capped
`stdout`/`stderr`, `returncode`, `timed_out`, `wall_s`, `sandbox`).

Root (the worker container): each child is PID 1 of a new PID namespace in a new network
namespace, so everything it starts dies with it and nothing is reachable. Not root: a
user namespace for the network where the kernel allows it, no PID namespace (leftovers
are killed by process group only); the reply says which.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time
import traceback


def _load(name: str):
    # By path, under a name no evaluation script will import: -I keeps this folder (with
    # the project's other modules) off sys.path, and it should stay off.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_evalserver_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_child_module = _load("child")
_confine = _load("confine")
Limits = _load("limits").Limits
ScriptError = _child_module.ScriptError
call_evaluate = _child_module.call_evaluate
finish_report = _child_module.finish_report
load_evaluate = _child_module.load_evaluate
_sys = _confine.sys_call
enter_user_and_network_namespace = _confine.enter_user_and_network_namespace
pin_cpus = _confine.pin_cpus
confine_filesystem = _confine.confine_filesystem
import_roots = _confine.import_roots
CLONE_NEWNET, CLONE_NEWPID = _confine.CLONE_NEWNET, _confine.CLONE_NEWPID
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = _confine.PR_SET_PDEATHSIG, _confine.PR_SET_DUMPABLE
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = (
    _confine.PR_SET_CHILD_SUBREAPER,
    _confine.PR_SET_NO_NEW_PRIVS,
)


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class _Standby:
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


class _Capture:
    """The first `cap` bytes of one of the child's output streams."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data, self.total = cap, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if len(self.data) < self.cap:
            self.data += chunk[: self.cap - len(self.data)]


class Server:
    def __init__(self, conn: socket.socket, evaluate) -> None:
        self.conn, self.evaluate = conn, evaluate
        self.reader = conn.makefile("rb")
        self.root = os.geteuid() == 0
        self.standby: _Standby | None = None
        self.dying: tuple[int, bool] | None = None  # (pid, in a PID namespace): to reap
        self.report_fd: int | None = None
        self.warned = False
        # Started in a network namespace of its own (forkserver's `unshare --net`): its
        # children share it rather than each making (and the kernel tearing down) one.
        # One child runs at a time, and whatever it bound dies with its PID namespace.
        self.shared_net = self.root and _only_loopback()
        # Where Python imports from: each child's read-only binds (asked once, not per fork).
        self.roots = import_roots()
        self.to_learn: set[str] = set()  # modules the last children imported
        self.refused: set[str] = set()  # not ours to import, or failed to
        self.learned = 0
        self.runs = 0
        try:
            self.own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.own_pid_ns = None

    def send(self, message: dict) -> None:
        self.conn.sendall(json.dumps(message).encode() + b"\n")

    def loop(self) -> None:
        try:
            self.standby = self._spawn_or_none()
            while True:
                line = self.reader.readline()
                if not line:
                    return  # the worker closed its end (shut down, or died)
                reply = self._run(json.loads(line))
                if reply is None:
                    return
                self.send(reply)
                # Off the request's path: learn what the last child imported, fork the
                # next child while the last one (killed already) tears down, then reap it
                # before taking the next request.
                self._learn()
                self.standby = self._spawn_or_none()
                self._bury()
        finally:
            if self.standby is not None:
                _kill(self.standby.pid)
            if self.dying is not None:
                _kill(self.dying[0])

    # The namespaces: a new PID namespace must be made by the parent (unshare(CLONE_NEWPID)
    # affects the caller's next child), so the child is PID 1 of its own namespace and
    # everything it starts dies with it. setns() back to our own namespace first: after a
    # fork, "the namespace for children" still names the previous child's (dead) one.
    def _enter_new_pid_namespace(self) -> bool:
        if not self.root or self.own_pid_ns is None:
            return False
        try:
            _sys("setns", self.own_pid_ns, CLONE_NEWPID)
            _sys("unshare", CLONE_NEWPID)
            return True
        except OSError as exc:
            self._warn(f"no PID namespace for evaluations ({exc})")
            return False

    def _warn(self, text: str) -> None:
        if not self.warned:
            self.warned = True
            print(f"warm parent {os.getpid()}: {text}", file=sys.stderr, flush=True)

    def _spawn_or_none(self) -> _Standby | None:
        try:
            return self._spawn()
        except OSError as exc:
            print(f"warm parent: cannot fork a child ({exc})", file=sys.stderr, flush=True)
            return None

    def _spawn(self) -> _Standby:
        pid_namespace = self._enter_new_pid_namespace()
        ctl_r, ctl_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        info_r, info_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            for fd in (ctl_r, ctl_w, out_r, out_w, err_r, err_w, info_r, info_w):
                os.close(fd)
            raise
        finally:
            if pid_namespace:
                with contextlib.suppress(OSError):
                    _sys("setns", self.own_pid_ns, CLONE_NEWPID)
        if pid == 0:
            try:
                for fd in (ctl_w, out_r, err_r, info_r, self.conn.fileno(), self.own_pid_ns):
                    if fd is not None:
                        os.close(fd)
                self._child(ctl_r, out_w, err_w, info_w)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(70)
        for fd in (ctl_r, out_w, err_w, info_w):
            os.close(fd)
        # The child does it too; whichever comes second may fail.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        return _Standby(pid, pid_namespace, ctl_w, out_r, err_r, info_r)

    def _child(self, ctl_r: int, out_w: int, err_w: int, info_w: int) -> None:
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
            if self.shared_net:
                pass  # the warm parent's own: nothing but a loopback that is down
            elif self.root:
                _sys("unshare", CLONE_NEWNET)
            else:
                enter_user_and_network_namespace()
            info["network_isolated"] = True
        except OSError as exc:
            info["why"] = str(exc)
        _write_all(info_w, json.dumps(info).encode() + b"\n")
        self.report_fd = info_w
        chunks = []
        while chunk := os.read(ctl_r, 65536):
            chunks.append(chunk)
        if not chunks:
            os._exit(0)  # the parent is shutting down
        os.close(ctl_r)
        self._evaluate(json.loads(b"".join(chunks)))

    def _evaluate(self, msg: dict) -> None:
        limits, uid = Limits.from_message(msg["limits"]), msg.get("uid")
        me = os.getpid()
        # RLIMIT_AS caps the whole address space, and this child starts with everything the
        # warm parent mapped: the interpreter and the script's libraries (pandas + sklearn
        # alone reserve hundreds of MB of virtual memory). So the phase's memory_mb is what
        # evaluate() may add on top of what is mapped now: VmSize at this point + memory_mb.
        memory = _vm_size_bytes() + limits.memory_mb * 1024 * 1024
        cpu = limits.cpu_limit_s + 1
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
        # A fresh interpreter would have a fresh global seed; the script's copy has the
        # parent's. (Only if loaded already: a lazy import here is slow, and later fresh.)
        if "numpy.random" in sys.modules:
            with contextlib.suppress(Exception):
                sys.modules["numpy.random"].seed()
        if limits.cpus:
            pin_cpus(limits.cpus, int(msg.get("cpu_slot") or 0))
        filesystem = self._confine(msg, uid)
        if "error" in filesystem and msg.get("strict"):
            # Untrusted code (a participant's model) never runs without its own view of the
            # file system: local services' sockets under /run, other files.
            report = {
                "ok": False,
                "kind": "sandbox",
                "error": f"the sandbox could not hide the machine's files: {filesystem['error']}",
                "filesystem": filesystem,
            }
            _write_all(self.report_fd, finish_report(report) + b"\n")
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
        before = set(sys.modules) if msg.get("learn") else None
        report = call_evaluate(self.evaluate, msg["request"])
        if os.getpid() != me:
            os._exit(0)  # a process the script forked came back through here
        report["filesystem"] = filesystem
        if before is not None:
            # What this evaluation imported that the warm parent lacks: it imports those
            # (Server._learn), so the next children start with them.
            report["imported"] = [name for name in sys.modules if name not in before][:MAX_LEARNED]
        # The same report the cold child writes to its file, as one line to the parent.
        _write_all(self.report_fd, finish_report(report) + b"\n")
        os._exit(0)

    def _confine(self, msg: dict, uid: int | None) -> dict:
        """The child's own view of the file system (confine.confine_filesystem): what it
        imports from and the inputs it was given, read-only; its work folder; a /tmp of its
        own. Not root: inside the user namespace made at fork, where the kernel allows it."""
        try:
            return confine_filesystem(
                uid=uid if uid is not None else os.geteuid(),
                gid=uid if uid is not None else os.getegid(),
                read_only=[*self.roots, *msg.get("expose", ())],
                writable=[msg["work"]] if msg["work"] else [],
                tmp_mb=msg.get("tmp_mb"),
                hide=msg.get("hide", ()),
            )
        except OSError as exc:
            # The worker's self-check (workers.selfcheck) refuses to start when this leaves
            # a child unable to import; here it only costs the private /tmp.
            return {"error": str(exc)}

    def _run(self, msg: dict) -> dict | None:
        standby, self.standby = self.standby, None
        if standby is not None and _reaped_status(standby.pid) is not None:
            standby.close()
            standby = None
        if standby is None:
            try:
                standby = self._spawn()
            except OSError as exc:
                return {"error": f"the warm parent could not fork a child: {exc}"}
        return self._supervise(standby, msg)

    def _supervise(self, standby: _Standby, msg: dict) -> dict | None:
        info = _read_line(standby.info_r)
        if not info.get("network_isolated"):
            self._warn(f"no network namespace for evaluations ({info.get('why', 'child died')})")
        limits = Limits.from_message(msg["limits"])
        out, err = _Capture(limits.log_max_bytes), _Capture(limits.log_max_bytes)
        streams = {standby.out_r: out, standby.err_r: err}
        report = bytearray()
        started = time.monotonic()
        deadline = started + limits.time_limit_s
        fallback = None
        if msg.get("work") is None:
            self.runs += 1
            # (Not TMPDIR: ours is the warm parent's own 0700 folder.)
            fallback = msg["fallback_work"] = os.path.join(
                "/tmp", f"evalserver-work-{os.getpid()}-{self.runs}"
            )
        # If it died before its request, its exit status says so below.
        with contextlib.suppress(OSError):
            _write_all(standby.ctl_w, json.dumps(msg).encode())
        os.close(standby.ctl_w)
        standby.ctl_w = None
        poller = select.poll()
        for fd in (*streams, standby.info_r):
            poller.register(fd, select.POLLIN)
        if standby.pidfd is not None:
            poller.register(standby.pidfd, select.POLLIN)
        poller.register(self.conn.fileno(), select.POLLIN)
        timed_out = worker_gone = False
        status = None
        while status is None and b"\n" not in report:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            wait = remaining if standby.pidfd is not None else min(remaining, 0.01)
            for fd, _event in poller.poll(wait * 1000):
                if fd in streams:
                    if not _pump(fd, streams[fd]):
                        poller.unregister(fd)
                elif fd == standby.info_r:
                    chunk = os.read(fd, 65536)
                    report += chunk
                    if not chunk:
                        poller.unregister(fd)
                elif fd == self.conn.fileno():
                    worker_gone = _peer_closed(self.conn)
                    poller.unregister(fd)
            if worker_gone:
                break
            if b"\n" not in report:
                status = _reaped_status(standby.pid)
        wall = time.monotonic() - started
        if status is not None and b"\n" not in report:
            # It reported and exited between our poll and the reap: the line is in the pipe.
            report += _drain(standby.info_r)
        if status is None:
            # Reported, out of time, or orphaned: as PID 1 of its namespace, everything in
            # it dies with it; without one, its process group goes too.
            _kill(standby.pid)
            if b"\n" in report:
                # Reaped after the reply, off the request's path.
                self.dying = (standby.pid, standby.pid_namespace)
            else:
                status = os.wait4(standby.pid, 0)[1:]
        elif not standby.pid_namespace:
            _kill_group(standby.pid)
        for fd, capture in streams.items():
            os.set_blocking(fd, False)
            while _pump(fd, capture):
                pass
        standby.close()  # before the next fork, which would inherit its pipes
        if fallback is not None and os.path.lexists(fallback):
            shutil.rmtree(fallback, ignore_errors=True)
        if worker_gone:
            return None
        parsed = None
        if b"\n" in report:
            try:
                parsed = json.loads(bytes(report).split(b"\n", 1)[0])
            except ValueError:
                parsed = None
        if isinstance(parsed, dict):
            imported = parsed.pop("imported", None)
            if isinstance(imported, list):
                self.to_learn.update(n for n in imported[:MAX_LEARNED] if isinstance(n, str))
        raw, usage = status if status is not None else (0, None)
        return {
            "report": parsed,
            "returncode": os.waitstatus_to_exitcode(raw),
            "timed_out": timed_out,
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime if usage else 0.0,
            "max_rss_kb": usage.ru_maxrss if usage else 0,
            "stdout": out.data.decode("utf-8", errors="replace"),
            "stdout_truncated": out.total > out.cap,
            "stderr": err.data.decode("utf-8", errors="replace"),
            "stderr_truncated": err.total > err.cap,
            "sandbox": {
                "network_isolated": bool(info.get("network_isolated")),
                "pid_namespace": standby.pid_namespace,
                "learned_modules": self.learned,
            },
        }

    def _learn(self) -> None:
        """Import here what children imported lazily (pandas' and scikit-learn's submodules,
        codecs), so the next children inherit them instead of paying for the import each.

        Only names the child reported, only submodules of packages this parent imported
        already (so no evaluation can make it import an arbitrary module), only from the
        folders it imports from. Nothing of the child's state comes back: each module is
        imported fresh, by name, as the script's own import did."""
        names, self.to_learn = self.to_learn, set()
        if not names or self.learned >= MAX_LEARNED:
            return
        roots = tuple(root.rstrip("/") + "/" for root in self.roots)
        added = 0
        for name in sorted(names, key=lambda n: (n.count("."), n)):  # packages first
            if name in sys.modules or name in self.refused:
                continue
            top = name.partition(".")[0]
            if top not in sys.modules or top.startswith("_evalserver") or name == "__main__":
                self.refused.add(name)
                continue
            try:
                spec = importlib.util.find_spec(name)
                origin = os.path.realpath(spec.origin) if spec and spec.has_location else ""
                if not (spec and (not spec.has_location or origin.startswith(roots))):
                    self.refused.add(name)
                    continue
                importlib.import_module(name)
                added += 1
            except BaseException:  # noqa: BLE001 - anything a module does at import
                self.refused.add(name)
            if self.learned + added >= MAX_LEARNED:
                break
        if added:
            self.learned += added
            self.roots = import_roots()  # (an imported package may have added a path)
            gc.collect()
            gc.freeze()
            threads = len(os.listdir("/proc/self/task"))
            if threads > 1:
                self._warn(f"runs {threads} threads after importing what evaluations import")

    def _bury(self) -> None:
        """Reap the child that reported (killed already), then orphans of earlier ones: without
        a PID namespace they are re-parented to us, a child subreaper. (A standby that died
        may be reaped here too; `_run` then forks another.)"""
        dying, self.dying = self.dying, None
        if dying is not None:
            pid, pid_namespace = dying
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if not pid_namespace:
                _kill_group(pid)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


MAX_LEARNED = 2000  # modules a warm parent imports on its children's behalf, at most


def _only_loopback() -> bool:
    try:
        return {name for _, name in socket.if_nameindex()} <= {"lo"}
    except OSError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _kill(pid: int) -> None:
    """Only for a child not yet reaped: once reaped, its pid may be someone else's."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    _kill_group(pid)


def _kill_group(pgid: int) -> None:
    # Safe after the leader is reaped: a process group's id is not reused while it has members.
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _reaped_status(pid: int):
    try:
        done, raw, usage = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        return (0, None)
    return (raw, usage) if done else None


def _pump(fd: int, capture: _Capture) -> bool:
    """Take what the child wrote; False at the end of the stream (or nothing more for now)."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return False
    capture.add(data)
    return bool(data)


def _peer_closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _drain(fd: int) -> bytes:
    """What is left in a pipe whose writer has exited, without waiting for more."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(OSError):  # BlockingIOError: nothing more for now
        while chunk := os.read(fd, 65536):
            data += chunk
    return data


def _read_line(fd: int) -> dict:
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


def serve(fd: int, script_root: str, module: str, parent: int) -> None:
    if parent:
        # Die with the worker. If it died before this line, we were re-parented already.
        _sys("prctl", PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(0)
    with contextlib.suppress(OSError):
        _sys("prctl", PR_SET_CHILD_SUBREAPER, 1)
    conn = socket.socket(fileno=fd)
    conn.set_inheritable(False)
    started = time.monotonic()
    try:
        evaluate = load_evaluate(script_root, module)
    except ScriptError as exc:
        conn.sendall(json.dumps({"ready": False, **exc.report()}).encode() + b"\n")
        return
    except MemoryError:
        error = ScriptError(f"{module} could not be imported: MemoryError", traceback.format_exc())
        conn.sendall(json.dumps({"ready": False, **error.report()}).encode() + b"\n")
        return
    warm_up = getattr(sys.modules.get(module), "warm_up", None)
    if callable(warm_up):
        # The host's hook (docs/bundles.md): typically evaluate() on a tiny input of its
        # own, so caches and first-call costs are paid once here, not in every child.
        # Host code as at import time; never participants' data.
        try:
            warm_up()
        except BaseException:  # noqa: BLE001 - a failed warm-up only costs speed
            print("warm_up() failed; evaluations start colder:", file=sys.stderr)
            traceback.print_exc()
    # Keep the imported objects out of the children's garbage collections: collecting them
    # would write to (and so copy) every page they live on, in every child.
    gc.collect()
    gc.freeze()
    server = Server(conn, evaluate)
    server.send(
        {
            "ready": True,
            "pid": os.getpid(),
            "import_s": time.monotonic() - started,
            "threads": len(os.listdir("/proc/self/task")),
            "vm_size_kb": _vm_size_bytes() // 1024,
        }
    )
    server.loop()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
