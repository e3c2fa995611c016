"""The warm parent of one script version (started by workers.sandbox.forkserver): import the script
once, then for each request read from the socket, hand it to a child forked ahead of time
that limits itself, drops to the sandbox uid and calls evaluate(). Standard library only,
run by path with `python -I` and an empty environment, like child.py, whose functions it
shares. What a child does once forked is forked.py; the pipes and processes, streams.py.

    warm_parent.py FD SCRIPT_ROOT MODULE PARENT_PID

Protocol on the socket FD, one JSON object per line: the parent says hello (ready, or the
script's import error); then each request (`request` for evaluate(), `work`, `uid`,
`limits` as workers/sandbox/limits.py's Limits, `cpu_slot`, `expose`: files to bind read-only,
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
import select
import shutil
import signal
import socket
import sys
import time
import traceback


def _load(name: str):
    # By path, under a name no evaluation script will import: -I keeps this folder (with
    # the project's other modules) off sys.path, and it should stay off. The only loader of
    # this folder's modules: forked.py takes its siblings from sys.modules, so they are
    # loaded before it.
    full = f"_evalserver_{name}"
    if full not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
        spec = importlib.util.spec_from_file_location(full, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[full]


_child_module = _load("child")
_confine = _load("confine")
streams = _load("streams")
Limits = _load("limits").Limits
forked = _load("forked")
ScriptError = _child_module.ScriptError
load_evaluate = _child_module.load_evaluate
_sys = _confine.sys_call
import_roots = _confine.import_roots
CLONE_NEWPID = _confine.CLONE_NEWPID
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = (
    _confine.PR_SET_PDEATHSIG,
    _confine.PR_SET_CHILD_SUBREAPER,
)


def _reseed_numpy() -> None:
    """A fresh interpreter has a fresh global seed for numpy; a forked child has the copy
    of ours. So ours is drawn anew before each fork: every child starts from its own, drawn
    after the previous child was forked (none knows the next one's). Here rather than in
    the child, where the draw's first touch of numpy's state copied 130 pages (0.85 ms of
    each child's CPU); here those pages are this process's own again once the last child
    is reaped (about 65 cheap faults). (Only if loaded already: a lazy import here is
    slow, and a child that imports numpy itself starts fresh anyway.)"""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        with contextlib.suppress(Exception):
            numpy_random.seed()


class Server:
    def __init__(self, conn: socket.socket, evaluate) -> None:
        self.conn, self.evaluate = conn, evaluate
        self.reader = conn.makefile("rb")
        self.root = os.geteuid() == 0
        self.standby: streams.Standby | None = None
        self.dying: tuple[int, bool] | None = None  # (pid, in a PID namespace): to reap
        self.warned = False
        # Started in a network namespace of its own (forkserver's `unshare --net`): its
        # children share it rather than each making (and the kernel tearing down) one.
        # One child runs at a time, and whatever it bound dies with its PID namespace.
        self.shared_net = self.root and streams.only_loopback()
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
                # Off the request's path: learn what the last child imported, reap it
                # (killed already), then fork the next child. Not the fork first: it
                # copies our page tables while the last child's exit unlinks the same
                # memory from them, and the two contend for its locks (0.3-0.6 ms more
                # of our CPU per fork, by bench.profile_sandbox).
                self._learn()
                self._bury()
                self.standby = self._spawn_or_none()
        finally:
            if self.standby is not None:
                streams.kill(self.standby.pid)
            if self.dying is not None:
                streams.kill(self.dying[0])

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

    def _spawn_or_none(self) -> streams.Standby | None:
        try:
            return self._spawn()
        except OSError as exc:
            print(f"warm parent: cannot fork a child ({exc})", file=sys.stderr, flush=True)
            return None

    def _spawn(self) -> streams.Standby:
        pid_namespace = self._enter_new_pid_namespace()
        ctl_r, ctl_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        info_r, info_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        _reseed_numpy()
        pid = -1
        try:
            pid = os.fork()
        except OSError:
            for fd in (ctl_r, ctl_w, out_r, out_w, err_r, err_w, info_r, info_w):
                os.close(fd)
            raise
        finally:
            # Ours only: in the child (PID 1 of the new namespace) the call can only fail,
            # and a failed call is an exception made and dropped on its path.
            if pid_namespace and pid != 0:
                with contextlib.suppress(OSError):
                    _sys("setns", self.own_pid_ns, CLONE_NEWPID)
        if pid == 0:
            try:
                for fd in (ctl_w, out_r, err_r, info_r, self.conn.fileno(), self.own_pid_ns):
                    if fd is not None:
                        os.close(fd)
                forked.run(
                    ctl_r,
                    out_w,
                    err_w,
                    info_w,
                    evaluate=self.evaluate,
                    roots=self.roots,
                    root=self.root,
                    shared_net=self.shared_net,
                )
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(70)
        for fd in (ctl_r, out_w, err_w, info_w):
            os.close(fd)
        # The child does it too; whichever comes second may fail.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        return streams.Standby(pid, pid_namespace, ctl_w, out_r, err_r, info_r)

    def _run(self, msg: dict) -> dict | None:
        standby, self.standby = self.standby, None
        if standby is not None and streams.reaped_status(standby.pid) is not None:
            standby.close()
            standby = None
        if standby is None:
            try:
                standby = self._spawn()
            except OSError as exc:
                return {"error": f"the warm parent could not fork a child: {exc}"}
        return self._supervise(standby, msg)

    def _supervise(self, standby: streams.Standby, msg: dict) -> dict | None:
        info = streams.read_line(standby.info_r)
        if not info.get("network_isolated"):
            self._warn(f"no network namespace for evaluations ({info.get('why', 'child died')})")
        limits = Limits.from_message(msg["limits"])
        out, err = streams.Capture(limits.log_max_bytes), streams.Capture(limits.log_max_bytes)
        outputs = {standby.out_r: out, standby.err_r: err}
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
            streams.write_all(standby.ctl_w, json.dumps(msg).encode())
        os.close(standby.ctl_w)
        standby.ctl_w = None
        poller = select.poll()
        for fd in (*outputs, standby.info_r):
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
                if fd in outputs:
                    if not streams.pump(fd, outputs[fd]):
                        poller.unregister(fd)
                elif fd == standby.info_r:
                    chunk = os.read(fd, 65536)
                    report += chunk
                    if not chunk:
                        poller.unregister(fd)
                elif fd == self.conn.fileno():
                    worker_gone = streams.peer_closed(self.conn)
                    poller.unregister(fd)
            if worker_gone:
                break
            if b"\n" not in report:
                status = streams.reaped_status(standby.pid)
        wall = time.monotonic() - started
        if status is not None and b"\n" not in report:
            # It reported and exited between our poll and the reap: the line is in the pipe.
            report += streams.drain(standby.info_r)
        if status is None:
            # Reported, out of time, or orphaned: as PID 1 of its namespace, everything in
            # it dies with it; without one, its process group goes too.
            streams.kill(standby.pid)
            if b"\n" in report:
                # Reaped after the reply, off the request's path.
                self.dying = (standby.pid, standby.pid_namespace)
            else:
                status = os.wait4(standby.pid, 0)[1:]
        elif not standby.pid_namespace:
            streams.kill_group(standby.pid)
        for fd, capture in outputs.items():
            os.set_blocking(fd, False)
            while streams.pump(fd, capture):
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
                self.to_learn.update(
                    n for n in imported[: forked.MAX_LEARNED] if isinstance(n, str)
                )
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
        if not names or self.learned >= forked.MAX_LEARNED:
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
            if self.learned + added >= forked.MAX_LEARNED:
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
        a PID namespace they are re-parented to us, a child subreaper. Called before the
        next standby is forked, so it never reaps that one."""
        dying, self.dying = self.dying, None
        if dying is not None:
            pid, pid_namespace = dying
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if not pid_namespace:
                streams.kill_group(pid)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


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
            "vm_size_kb": streams.vm_size_bytes() // 1024,
        }
    )
    server.loop()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
