"""Warm evaluation: a long-lived parent per script version, one limited child per submission.

A cold evaluation (workers.sandbox.runner) starts a fresh interpreter that imports the script and
its libraries: a second or more per submission. Here a parent process imports the script
once (`python -I workers/sandbox/warm_parent.py`, empty environment, standard library only on our
side) and, for each submission, hands the request to a child it forked ahead of time. The
child is PID 1 of a new PID namespace with its own (empty) network namespace where the
kernel allows it, limits itself (address space, CPU time, processes, no core dumps), drops
to the sandbox uid when the worker is root, and calls evaluate() in a fresh working folder.
The parent keeps the wall clock, caps the child's output, kills the namespace when the
child has reported or its time is up, and reaps it. The child's report is the one the cold
child writes, and `runner.classify_run` judges both, so both paths fail the same way.

Lifetimes: the parent dies with the worker process (parent-death signal, and the socket
closing), the child with the parent. workers.sandbox.evaluators keeps at most `MAX_WARM`
parents per worker process, least recently used first out.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.sandbox import runner
from workers.sandbox.limits import Limits, django_setting
from workers.sandbox.runner import Outcome

log = logging.getLogger(__name__)

# Size of an evaluate() child's own /tmp (a tmpfs: memory), in MB.
TMP_MB = int(django_setting("EVALUATION_TMP_MB", 2048))
START_TIMEOUT_S = 300.0  # importing the script and its libraries
REPLY_GRACE_S = 30.0  # past the time limit before we call the warm parent hung
CANCEL_POLL_S = 0.5  # how often a running evaluation asks whether it was cancelled
LOG_TAIL_BYTES = 8192


def hidden_folders() -> list[str]:
    """What no child sees but for the files it is given: the platform's storage and the
    script cache (every challenge's scripts and annotations, every team's files)."""
    folders = (django_setting("EVALUATION_CACHE_DIR", None), django_setting("MEDIA_ROOT", None))
    return [str(folder) for folder in folders if folder]


class WarmParentDied(Exception):
    pass


class WarmParentHung(Exception):
    pass


class EvaluationCancelled(Exception):
    pass


class ScriptLoadFailed(Exception):
    def __init__(self, error: str, tb: str) -> None:
        super().__init__(error)
        self.error, self.tb = error, tb


class WarmEvaluator:
    """The warm parent for one script version (`script_root/evaluation_script`).

    Started on first use. One evaluation at a time (a lock; Celery's prefork pool runs one
    task per process anyway). Create it from the thread that will keep using it, usually
    the main one: the parent-death signal fires when the creating *thread* exits, so from
    other threads we rely on the socket closing instead.
    """

    def __init__(
        self,
        script_root: Path | str,
        *,
        key: str,
        module: str = runner.SCRIPT_PACKAGE,
        python: str | None = None,
        one_shot: bool = False,
    ) -> None:
        self.script_root = Path(script_root)
        # For one evaluation only (evaluators.run_evaluation): the record says it was not warm.
        self.one_shot = one_shot
        self.key = key
        self.module = module
        # The script version's own environment when it has a requirements.txt.
        self.python = python or sys.executable
        self.hello: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._state: Path | None = None
        self._owner = os.getpid()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._owner == os.getpid() and self._proc.poll() is None

    def start(self) -> None:
        """Start the warm parent now rather than on the first `run()`; raises ScriptLoadFailed."""
        with self._lock:
            self._ensure()

    def shutdown(self) -> None:
        with self._lock:
            self._stop()

    def run(
        self,
        *,
        annotation_file: Path | str,
        submission_file: Path | str,
        phase_codename: str,
        splits: dict[str, list[str]],
        limits: Limits,
        submission_metadata: dict[str, Any] | None = None,
        partial_ok: bool = False,
        cancelled: Callable[[], bool] | None = None,
    ) -> Outcome:
        """Same arguments and result as `evaluators.run_evaluation`.

        If the warm parent is gone (killed, or the script's import failed) it is started
        again, once; a script that still cannot be imported fails with kind "script".
        `cancelled` is asked every CANCEL_POLL_S while evaluate() runs; when it says yes,
        the warm parent is stopped, which kills the child and everything it started.
        """
        uid = runner.sandbox_uid()
        request = runner.evaluate_request(
            annotation_file=annotation_file,
            submission_file=submission_file,
            phase_codename=phase_codename,
            metadata=submission_metadata,
        )
        # No folder of ours: the child works in its own /tmp, a tmpfs that goes with it.
        reply = self.call(
            request=request,
            limits=limits,
            uid=uid,
            work=None,
            expose=[str(annotation_file), str(submission_file), *runner.mapped_interpreter_roots()],
            writable_tmp=True,
            learn=True,
            cancelled=cancelled,
        )
        if "cancelled" in reply:
            return Outcome(
                ok=False,
                failure="cancelled",
                message="Cancelled while evaluate() was running; it was stopped.",
                sandbox=self._sandbox({}, uid),
            )
        if "script_error" in reply:
            error, tb = reply["script_error"]
            return runner.script_failure(error, tb, limits, self._sandbox({}, uid))
        if "died" in reply:
            return self._died(limits, uid, reply["died"], starting=reply["starting"])
        if "error" in reply:
            return self._died(limits, uid, reply["error"], starting=False)
        cap = limits.log_max_bytes
        return runner.classify_run(
            report=reply.get("report"),
            stdout=runner.capped_text(
                reply.get("stdout", ""), truncated=reply.get("stdout_truncated"), cap=cap
            ),
            stderr=runner.capped_text(
                reply.get("stderr", ""), truncated=reply.get("stderr_truncated"), cap=cap
            ),
            limits=limits,
            splits=splits,
            partial_ok=partial_ok,
            returncode=reply["returncode"],
            timed_out=reply["timed_out"],
            wall_s=reply.get("wall_s", limits.time_limit_s + REPLY_GRACE_S),
            sandbox=self._sandbox(
                {
                    **reply.get("sandbox", {}),
                    "filesystem": (reply.get("report") or {}).get("filesystem"),
                },
                uid,
            ),
            usage=reply,
        )

    def call(
        self,
        *,
        request: dict[str, Any],
        limits: Limits,
        uid: int | None,
        work: Path | None,
        expose: list[str] | tuple[str, ...] = (),
        writable_tmp: bool = True,
        learn: bool = False,
        strict: bool = False,
        cancelled: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """One request through the warm parent, with the files in `expose` readable where
        they are. The child gets a /tmp and /var/tmp of its own: when `writable_tmp`
        (evaluate(): EvalAI scripts unpack submissions to fixed /tmp folders), a tmpfs of
        EVALUATION_TMP_MB that goes with it; root-only otherwise (participants' models).
        It works in `work` (made by the caller, writable by `uid`) or, when None, in a
        folder of that /tmp.

        `learn`: the warm parent imports what the child imported lazily, so later children
        start warm (host scripts; not participants' models, whose imports they choose).
        `strict`: the child runs nothing unless its own view of the file system was set up
        (participants' models).

        Returns the warm parent's raw reply, or `{"script_error": (error, tb)}` when the
        module cannot be loaded, or `{"died": detail, "starting": bool}` when the warm
        parent failed twice."""
        message = self._message(work, request, limits, uid) | {
            "expose": [str(p) for p in expose],
            "tmp_mb": TMP_MB if writable_tmp else None,
            "learn": learn,
            # CodaLab/Codabench programs (challenges.bundle.codalab): an /app of their own.
            "app": (Path(self.script_root) / runner.SCRIPT_PACKAGE / "codalab.json").is_file(),
            "hide": hidden_folders(),
            "strict": strict,
        }
        return self._call(message, limits, cancelled)

    def _call(self, message, limits: Limits, cancelled) -> dict[str, Any]:
        with self._lock:
            for attempt in (1, 2):
                last = attempt == 2
                try:
                    self._ensure()
                except ScriptLoadFailed as exc:
                    if last:
                        return {"script_error": (exc.error, exc.tb)}
                    continue
                except WarmParentDied:
                    tail = self._stop()
                    if last:
                        return {"died": tail, "starting": True}
                    continue
                try:
                    self._send(message)
                    return self._receive(
                        time.monotonic() + limits.time_limit_s + REPLY_GRACE_S, cancelled
                    )
                except EvaluationCancelled:
                    # The parent forks the next child while it waits: stopping it is the
                    # one sure way to stop this child now. The next run starts it again.
                    log.info("evaluation cancelled; stopping warm parent %s", self.pid)
                    self._stop()
                    return {"cancelled": True}
                except WarmParentHung:
                    log.error("warm parent %s for %s stopped answering", self.pid, self.key)
                    self._stop()
                    return {"timed_out": True, "returncode": -9}
                except WarmParentDied:
                    tail = self._stop()
                    if last:
                        return {"died": tail, "starting": False}
        raise AssertionError("unreachable")

    # --- the warm parent's process ------------------------------------------------------

    def _ensure(self) -> None:
        if self._owner != os.getpid():
            # Inherited through fork(): that parent belongs to the process that started it.
            if self._sock is not None:
                self._sock.close()
            self._proc = self._sock = self._state = None
            self._owner = os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            log.warning(
                "warm parent for %s exited (status %s); starting it again",
                self.key,
                self._proc.returncode,
            )
        self._stop()
        self._spawn()

    def _spawn(self) -> None:
        state = Path(tempfile.mkdtemp(prefix="evalserver-warm-"))
        ours, theirs = socket.socketpair()
        # The script's import runs here, in the parent: keep it off the network like the
        # cold child's. Its children get namespaces of their own (warm_parent.Server).
        # (As root without CAP_SYS_ADMIN the probe finds only a user namespace, in which the
        # child could not switch to the sandbox uid: no prefix then.)
        prefix = ("unshare", "--net") if runner.isolation()[:2] == ("unshare", "--net") else ()
        parent = os.getpid() if threading.current_thread() is threading.main_thread() else 0
        command = [
            *prefix,
            self.python,
            "-I",
            str(runner.WARM_PARENT),
            str(theirs.fileno()),
            str(self.script_root),
            self.module,
            str(parent),
        ]
        started = time.monotonic()
        with (state / "server.log").open("wb") as log_file:
            proc = subprocess.Popen(
                command,
                cwd=state,
                env=runner.child_env(state),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        theirs.close()
        self._proc, self._sock, self._state, self._buffer = proc, ours, state, b""
        try:
            hello = self._receive(time.monotonic() + START_TIMEOUT_S)
        except WarmParentHung:
            raise WarmParentDied(f"did not load the script within {START_TIMEOUT_S:g} s") from None
        if not hello.get("ready"):
            self._stop()
            raise ScriptLoadFailed(
                hello.get("error", "the script failed to load"), hello.get("traceback", "")
            )
        if hello.get("threads", 1) > 1:
            log.warning(
                "warm parent for %s runs %s threads after importing the script; forking it "
                "may deadlock a child if one holds a lock",
                self.key,
                hello["threads"],
            )
        self.hello = hello
        log.info(
            "warm parent %s for %s ready in %.2f s",
            proc.pid,
            self.key,
            time.monotonic() - started,
        )

    def _stop(self) -> str:
        """Stop the warm parent (if ours); returns the tail of its log."""
        tail = ""
        if self._sock is not None:
            self._sock.close()  # it sees end-of-file, kills its standby child and exits
            self._sock = None
        if self._proc is not None and self._owner == os.getpid():
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._state is not None:
            tail = _tail(self._state / "server.log")
            shutil.rmtree(self._state, ignore_errors=True)
            self._state = None
        return tail

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(message, default=str).encode() + b"\n")
        except OSError as exc:
            raise WarmParentDied(str(exc)) from None

    def _receive(
        self, deadline: float, cancelled: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarmParentHung()
            self._sock.settimeout(min(remaining, CANCEL_POLL_S) if cancelled else remaining)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                if cancelled is not None and cancelled():
                    raise EvaluationCancelled() from None
                continue
            except OSError as exc:
                raise WarmParentDied(str(exc)) from None
            if not data:
                raise WarmParentDied("the warm parent closed its socket")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    # --- messages and outcomes ------------------------------------------------------------

    @staticmethod
    def _message(work: Path | None, request, limits: Limits, uid) -> dict[str, Any]:
        return {
            "request": request,
            "work": str(work) if work is not None else None,
            "uid": uid,
            "limits": limits.to_message(),
            # Which core(s): concurrent pool processes pin their children apart.
            "cpu_slot": os.getpid(),
        }

    def _sandbox(self, extra: dict[str, Any], uid: int | None) -> dict[str, Any]:
        return {
            "warm": not self.one_shot,
            "warm_parent_pid": self.pid,
            "network_isolated": False,
            "pid_namespace": False,
            **extra,
            "uid": uid if uid is not None else os.geteuid(),
            "python": platform.python_version(),
            "host": platform.node(),
        }

    def _died(self, limits: Limits, uid, detail: str, *, starting: bool) -> Outcome:
        log.error("warm parent for %s failed: %s", self.key, detail)
        what = "could not start" if starting else "died during the evaluation"
        return Outcome(
            ok=False,
            failure="crash",
            message=(
                f"The evaluation process for this script {what}, twice; the platform "
                "operators have the details in the worker log."
            ),
            traceback=detail,
            sandbox=self._sandbox({}, uid),
        )


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
