"""Running a challenge's evaluate() in a limited child process: what a child gets and how
its end is judged.

One sandbox (DESIGN section 6): every evaluate() and every participant's predict() is a
child forked by a warm parent (workers.sandbox.forkserver, workers/sandbox/warm_parent.py) that limits
itself (workers.sandbox.limits.Limits: address space, CPU time, processes, file size, CPU
pinning), gets its own PID, network and mount namespaces (workers/sandbox/confine.py: empty /run,
/tmp, /var/tmp and /dev/shm of its own, the interpreter's folders bound back read-only
wherever they live), an empty environment and no new privileges, drops to the sandbox
uid when the worker is root, and reports as child.py says. `classify_run` judges every
end. Which warm parent runs a call is workers.sandbox.evaluators' business; this module
sits below it and the fork server, importing neither.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from challenges.results import ParsedResult, ResultError, parse_result
from workers.sandbox.limits import Limits, django_setting

log = logging.getLogger(__name__)

WARM_PARENT = Path(__file__).with_name("warm_parent.py")
SCRIPT_PACKAGE = "evaluation_script"
SANDBOX_UID = int(django_setting("EVALUATION_SANDBOX_UID", 65534))


@dataclass
class Outcome:
    ok: bool
    parsed: ParsedResult | None = None
    # "timeout", "memory", "cpu", "processes", "file_size", "network", "exception", "result",
    # "crash", "script", "platform"
    failure: str = ""
    message: str = ""  # for the participant: what went wrong and what limit was hit
    traceback: str = ""  # for the host (and the participant unless disable_logs)
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    evaluate_cpu_s: float = 0.0  # of cpu_s, the evaluate() call's own
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
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)  # streamed: a member may be large
    _open_up(dest)
    return dest


def _open_up(root: Path) -> None:
    """Readable (not writable) by the sandbox user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def capped_text(text: str, *, truncated: bool, cap: int) -> str:
    if truncated:
        text += f"\n[output truncated at {cap} bytes]"
    return text


def mapped_interpreter_roots() -> list[str]:
    """The installation folders of the interpreters operators map CodaLab images to
    (CODALAB_IMAGE_MAP): bound read-only into each child like the default interpreter's,
    so a pyenv 2.7 under /root (0700) runs as the sandbox uid too."""
    roots = []
    for value in dict(django_setting("CODALAB_IMAGE_MAP", {}) or {}).values():
        value = str(value).strip()
        found = value if os.sep in value else shutil.which(value)
        if not found or not os.path.exists(found):
            continue
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(found)))
        if prefix not in ("/", "/usr", "/usr/local") and os.path.isdir(prefix):
            roots.append(prefix)
    return sorted(set(roots))


def phase_limits(resources: dict[str, Any] | None) -> Limits:
    """One evaluate()'s limits: the operator's settings, then the phase's `resources`. The
    worker and `evaluate_local` both ask here, so a host's local run is limited alike."""
    from django.conf import settings

    return Limits.for_phase(
        resources,
        time_limit_s=settings.EVALUATION_TIME_LIMIT_S,
        memory_mb=settings.EVALUATION_MEMORY_MB,
        max_processes=settings.EVALUATION_MAX_PROCESSES,
        log_max_bytes=settings.EVALUATION_LOG_MAX_BYTES,
        max_file_mb=settings.EVALUATION_MAX_FILE_MB,
    )


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
    outcome.evaluate_cpu_s = float(usage.get("evaluate_cpu_s", 0.0))
    outcome.max_rss_kb = int(usage.get("max_rss_kb", 0))
    return _classify(outcome, report, timed_out, returncode, limits, splits, partial_ok)


def script_failure(error: str, traceback: str, limits: Limits, sandbox: dict[str, Any]) -> Outcome:
    """The script could not be loaded at all (warm path: its import failed in the parent)."""
    report = {"ok": False, "kind": "script", "error": error, "traceback": traceback}
    return _classify(Outcome(ok=False, sandbox=sandbox), report, False, 1, limits, {}, False)


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
        cpu_limit = limits.cpu_limit_s
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
        elif kind == "file_size":
            outcome.failure = "file_size"
            outcome.message = (
                f"evaluate() tried to write a file larger than the limit of "
                f"{limits.max_file_mb} MB ({error})."
            )
        elif kind == "network":
            outcome.failure = "network"
            outcome.message = (
                f"evaluate() tried to use the network, which evaluations cannot reach ({error})."
            )
        elif kind == "script":
            outcome.failure = "script"
            outcome.message = error
        elif kind == "sandbox":
            # The worker's self-check should have refused to start; say whose fault it is.
            outcome.failure = "platform"
            outcome.message = (
                "The evaluation could not import what it needs: the platform's sandbox cannot "
                f"reach {report.get('folder', 'a folder')}. This is not a problem with your "
                "submission; the operators have been told."
            )
            log.error("sandbox cannot reach %s: %s", report.get("folder"), error)
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
