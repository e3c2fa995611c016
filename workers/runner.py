"""Running a challenge's evaluate() in a limited child process.

The child gets: a wall-clock limit (enforced here), RLIMIT_AS, RLIMIT_CPU, a process
limit, an empty environment, a fresh working folder, and — where the kernel lets us
make them — its own network namespace (no network) and PID namespace (every process
it starts dies with it). When the worker runs as root, the child drops to an
unprivileged uid so the process limit applies and the platform's files stay read-only.

Two ways to start that child, one classification (`classify_run`): the cold path here (a
fresh interpreter per evaluation; `evaluate_local` uses it so hosts test exactly this
sandbox) and the warm path in workers.forkserver (a parent per script version with the
script imported once, forking one limited child per evaluation).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from workers.results import ParsedResult, ResultError, parse_result

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("child.py")
WARM_PARENT = Path(__file__).with_name("warm_parent.py")
SCRIPT_PACKAGE = "evaluation_script"
SANDBOX_UID = int(os.environ.get("EVALUATION_SANDBOX_UID", "65534"))


@dataclass(frozen=True)
class Limits:
    time_limit_s: float = 600.0
    memory_mb: int = 4096
    cpu_time_s: float | None = None  # default: the wall-clock limit times the CPUs allowed
    max_processes: int = 64
    log_max_bytes: int = 1024**2
    cpus: int | None = None  # pin to this many cores (code submissions: 1); None: no pinning
    max_file_mb: int | None = None  # RLIMIT_FSIZE, the largest file the child may write

    @classmethod
    def for_phase(cls, resources: dict[str, Any] | None, **defaults: Any) -> Limits:
        base = cls(**defaults)
        resources = resources or {}
        return cls(
            time_limit_s=float(resources.get("time_limit_s", base.time_limit_s)),
            memory_mb=int(resources.get("memory_mb", base.memory_mb)),
            cpu_time_s=base.cpu_time_s,
            max_processes=base.max_processes,
            log_max_bytes=base.log_max_bytes,
        )


@dataclass
class Outcome:
    ok: bool
    parsed: ParsedResult | None = None
    # "timeout", "memory", "cpu", "processes", "network", "exception", "result", "crash", "script"
    failure: str = ""
    message: str = ""  # for the participant: what went wrong and what limit was hit
    traceback: str = ""  # for the host (and the participant unless disable_logs)
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    sandbox: dict[str, Any] = field(default_factory=dict)


@cache
def isolation() -> tuple[str, ...]:
    """The command prefix that gives the child no network and its own PID namespace.

    Probed once per process. Empty when the kernel allows neither (the worker logs it).
    """
    candidates: list[tuple[str, ...]] = []
    if shutil.which("unshare"):
        if os.geteuid() == 0:
            candidates.append(("unshare", "--net", "--pid", "--fork", "--kill-child"))
        candidates.append(
            ("unshare", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
        )
    for prefix in candidates:
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    log.warning("No network namespace available: evaluate() children can reach the network.")
    return ()


@cache
def _setpriv() -> bool:
    return shutil.which("setpriv") is not None


def drop_privileges() -> tuple[str, ...]:
    if os.geteuid() == 0 and _setpriv():
        return (
            "setpriv",
            f"--reuid={SANDBOX_UID}",
            f"--regid={SANDBOX_UID}",
            "--clear-groups",
            "--",
        )
    return ()


def extract_script(archive: Path | str, dest: Path) -> Path:
    """Unpack a stored script archive into `dest/evaluation_script/`; returns `dest`."""
    package = dest / SCRIPT_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            # Archives are written by us (deterministic_zip) from validated paths; still,
            # never follow a name out of the package folder.
            target = (package / info.filename).resolve()
            if not target.is_relative_to(package.resolve()):
                raise ValueError(f"script archive entry {info.filename!r} leaves its folder")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    _open_up(dest)
    return dest


def _open_up(root: Path) -> None:
    """Readable (not writable) by the sandbox user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _limit_child(limits: Limits) -> None:
    memory = limits.memory_mb * 1024 * 1024
    cpu = int(limits.cpu_time_s or limits.time_limit_s) + 1
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_capped(path: Path, cap: int) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(cap + 1)
    except FileNotFoundError:
        return ""
    return capped_text(
        data[:cap].decode("utf-8", errors="replace"), truncated=len(data) > cap, cap=cap
    )


def capped_text(text: str, *, truncated: bool, cap: int) -> str:
    if truncated:
        text += f"\n[output truncated at {cap} bytes]"
    return text


def run_evaluation(
    *,
    script_root: Path,
    annotation_file: Path | str,
    submission_file: Path | str,
    phase_codename: str,
    splits: dict[str, list[str]],
    limits: Limits,
    submission_metadata: dict[str, Any] | None = None,
    partial_ok: bool = False,
) -> Outcome:
    """Run `script_root/evaluation_script`'s evaluate() in a limited child; check its result.

    Cold (what `evaluate_local` uses): a fresh interpreter per call, which imports the
    script itself; about a second or more per call. Workers take the warm path instead
    (workers.forkserver.WarmEvaluator.run: same arguments, same `Outcome`).
    """
    workdir = Path(tempfile.mkdtemp(prefix="evalserver-run-"))
    try:
        return _run(
            workdir=workdir,
            script_root=script_root,
            annotation_file=str(annotation_file),
            submission_file=str(submission_file),
            phase_codename=phase_codename,
            splits=splits,
            limits=limits,
            metadata=submission_metadata or {},
            partial_ok=partial_ok,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def sandbox_uid() -> int | None:
    """The uid evaluate() runs as: SANDBOX_UID when the worker is root, else the worker's own."""
    return SANDBOX_UID if os.geteuid() == 0 else None


def evaluate_request(
    *, annotation_file, submission_file, phase_codename, metadata
) -> dict[str, Any]:
    """What child.py passes to evaluate(), in both the cold and the warm path."""
    return {
        "annotation_file": str(annotation_file),
        "submission_file": str(submission_file),
        "phase_codename": phase_codename,
        "submission_metadata": metadata or {},
    }


def child_env(work: Path | str) -> dict[str, str]:
    """The whole environment of an evaluation: nothing of the worker's (no database URL,
    no secret key), one thread per maths library."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # pyarrow (which pandas imports) would start jemalloc's background thread: a warm
        # parent must stay single-threaded to fork safely.
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "JE_ARROW_MALLOC_CONF": "background_thread:false",
    }


@dataclass(frozen=True)
class _RunFiles:
    """A cold evaluation's folder: `work/` is the only place the child may write, plus its
    report and its captured output."""

    workdir: Path

    @property
    def work(self) -> Path:
        return self.workdir / "work"

    @property
    def stdout(self) -> Path:
        return self.workdir / "stdout.txt"

    @property
    def stderr(self) -> Path:
        return self.workdir / "stderr.txt"

    @property
    def result(self) -> Path:
        return self.workdir / "result.json"

    @property
    def request(self) -> Path:
        return self.workdir / "request.json"


def _prepare_run(workdir: Path, *, uid: int | None) -> _RunFiles:
    files = _RunFiles(workdir)
    files.work.mkdir()
    workdir.chmod(0o755)
    for path in (files.stdout, files.stderr, files.result):
        path.touch()
    if uid is not None:
        # The child may write only in its working folder and its own output files.
        for path in (files.work, files.stdout, files.stderr, files.result):
            os.chown(path, uid, uid)
    return files


def _finish_run(
    files: _RunFiles,
    *,
    limits: Limits,
    splits: dict[str, list[str]],
    partial_ok: bool,
    returncode: int,
    timed_out: bool,
    wall_s: float,
    sandbox: dict[str, Any],
    usage: dict[str, Any] | None = None,
) -> Outcome:
    """Read what the cold child left (capped logs, its JSON report) and classify it."""
    try:
        report = json.loads(files.result.read_text()) if files.result.stat().st_size else None
    except (OSError, ValueError):
        report = None
    return classify_run(
        report=report,
        stdout=_read_capped(files.stdout, limits.log_max_bytes),
        stderr=_read_capped(files.stderr, limits.log_max_bytes),
        limits=limits,
        splits=splits,
        partial_ok=partial_ok,
        returncode=returncode,
        timed_out=timed_out,
        wall_s=wall_s,
        sandbox=sandbox,
        usage=usage,
    )


def classify_run(
    *,
    report: dict[str, Any] | None,
    stdout: str,
    stderr: str,
    limits: Limits,
    splits: dict[str, list[str]],
    partial_ok: bool,
    returncode: int,
    timed_out: bool,
    wall_s: float,
    sandbox: dict[str, Any],
    usage: dict[str, Any] | None = None,
) -> Outcome:
    """One evaluation's end, cold or warm: the child's report (None if it wrote none), its
    capped output, how it ended. Resource use from the report, else from `usage`."""
    outcome = Outcome(ok=False, stdout=stdout, stderr=stderr, wall_s=wall_s, sandbox=sandbox)
    usage = {**(usage or {}), **(report or {})}
    outcome.cpu_s = float(usage.get("cpu_s", 0.0))
    outcome.max_rss_kb = int(usage.get("max_rss_kb", 0))
    return _classify(outcome, report, timed_out, returncode, limits, splits, partial_ok)


def script_failure(error: str, traceback: str, limits: Limits, sandbox: dict[str, Any]) -> Outcome:
    """The script could not be loaded at all (warm path: its import failed in the parent)."""
    report = {"ok": False, "kind": "script", "error": error, "traceback": traceback}
    return _classify(Outcome(ok=False, sandbox=sandbox), report, False, 1, limits, {}, False)


def _run(
    *,
    workdir: Path,
    script_root,
    annotation_file,
    submission_file,
    phase_codename,
    splits,
    limits,
    metadata,
    partial_ok,
) -> Outcome:
    drop = drop_privileges()
    files = _prepare_run(workdir, uid=SANDBOX_UID if drop else None)
    request = evaluate_request(
        annotation_file=annotation_file,
        submission_file=submission_file,
        phase_codename=phase_codename,
        metadata=metadata,
    )
    request |= {"script_root": str(script_root), "module": SCRIPT_PACKAGE}
    files.request.write_text(json.dumps(request, default=str))
    files.request.chmod(0o644)
    command = [
        *isolation(),
        *drop,
        sys.executable,
        "-I",
        str(CHILD),
        str(files.request),
        str(files.result),
    ]
    started = time.monotonic()
    with files.stdout.open("wb") as out, files.stderr.open("wb") as err:
        proc = subprocess.Popen(
            command,
            cwd=files.work,
            env=child_env(files.work),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=lambda: _limit_child(limits),  # noqa: PLW1509 - no threads touch the child
        )
        timed_out = not _wait_until(proc, started + limits.time_limit_s)
        if timed_out:
            _kill_group(proc)
        returncode, usage = _reap(proc)
    wall = time.monotonic() - started
    _kill_group(proc)  # leftovers, if the child escaped its namespace or had none
    return _finish_run(
        files,
        limits=limits,
        splits=splits,
        partial_ok=partial_ok,
        returncode=returncode,
        timed_out=timed_out,
        wall_s=wall,
        usage=usage,
        sandbox={
            "warm": False,
            "isolation": list(isolation()),
            "network_isolated": "--net" in isolation(),
            "pid_namespace": "--pid" in isolation(),
            "uid": SANDBOX_UID if drop else os.geteuid(),
            "python": platform.python_version(),
            "host": platform.node(),
        },
    )


def _wait_until(proc: subprocess.Popen, deadline: float) -> bool:
    """Wait for the child to end without reaping it (`_reap` then gets its resource
    usage); False at the deadline."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # kernel < 5.3: poll
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        return bool(ready)
    finally:
        os.close(pidfd)


def _reap(proc: subprocess.Popen) -> tuple[int, dict[str, Any]]:
    # wait4 counts the CPU time of everything below that was waited for: through unshare,
    # whose exit status says 1 where its child died of SIGXCPU (util-linux 2.38), this is
    # how a CPU-time limit is still recognised.
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # reaped by someone else: no status, no usage
        return proc.poll() or 0, {}
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
    }


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _classify(
    outcome: Outcome, report, timed_out, returncode, limits: Limits, splits, partial_ok
) -> Outcome:
    if timed_out:
        outcome.failure = "timeout"
        outcome.message = f"evaluate() did not finish within the time limit of {limits.time_limit_s:g} s and was stopped."
        return outcome
    if report is None:
        # Killed by signal N: -N from a direct child, 128+N through a shell or a PID 1.
        signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
        cpu_limit = int(limits.cpu_time_s or limits.time_limit_s)
        if signum in (signal.SIGXCPU, signal.SIGKILL) or outcome.cpu_s >= cpu_limit:
            # RLIMIT_CPU sends SIGXCPU, then SIGKILL at the hard limit.
            outcome.failure = "cpu"
            outcome.message = f"evaluate() used more than its CPU-time limit of {cpu_limit} s."
        elif (
            "MemoryError" in outcome.stderr
            or "Cannot allocate memory" in outcome.stderr
            or signum == signal.SIGSEGV
        ):
            outcome.failure = "memory"
            outcome.message = f"evaluate() exceeded the memory limit of {limits.memory_mb} MB."
        else:
            outcome.failure = "crash"
            outcome.message = (
                f"The evaluation process died (exit status {returncode}) before reporting a result."
            )
        if (
            "Resource temporarily unavailable" in outcome.stderr
            or "BlockingIOError" in outcome.stderr
        ):
            outcome.failure = "processes"
            outcome.message = (
                f"evaluate() started more than the {limits.max_processes} processes allowed."
            )
        return outcome
    if not report.get("ok"):
        kind = report.get("kind", "exception")
        outcome.traceback = report.get("traceback", "")
        error = report.get("error", "")
        if kind == "memory":
            outcome.failure = "memory"
            outcome.message = (
                f"evaluate() exceeded the memory limit of {limits.memory_mb} MB (MemoryError)."
            )
        elif kind == "processes":
            outcome.failure = "processes"
            outcome.message = f"evaluate() started more than the {limits.max_processes} processes allowed ({error})."
        elif kind == "network":
            outcome.failure = "network"
            outcome.message = (
                f"evaluate() tried to use the network, which evaluations cannot reach ({error})."
            )
        elif kind == "script":
            outcome.failure = "script"
            outcome.message = error
        else:
            outcome.failure = "exception"
            outcome.message = f"evaluate() raised {error}"
        return outcome
    try:
        outcome.parsed = parse_result(report.get("output"), splits=splits, partial_ok=partial_ok)
    except ResultError as exc:
        outcome.failure = "result"
        outcome.message = f"evaluate() returned a result that cannot be scored: {exc}"
        return outcome
    outcome.ok = True
    return outcome
