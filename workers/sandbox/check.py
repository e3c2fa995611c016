"""The sandbox's self-check, run before a worker takes work (and by `make demo`).

A sandboxed child (the same warm parent, limits and confinement every evaluation gets)
imports what evaluation scripts import lazily, reads a CSV as `utf-8-sig`, writes and
reads a Parquet file in its work folder, and scores it with scikit-learn; once as the
evaluate() uid and once as the models' uid. If that fails here, every submission would
fail later with a bare ImportError or LookupError: the worker refuses to start instead,
with one message that names the folder the child cannot reach, the uid, and what to do.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workers.sandbox import runner
from workers.sandbox.limits import Limits

log = logging.getLogger(__name__)

CHECK_ROOT = Path(__file__).with_name("selfcheck")
LIMITS = Limits(time_limit_s=120, memory_mb=2048, max_processes=64)
WHAT_TO_DO = (
    "What to do: run the worker as root with the SYS_ADMIN capability (docker-compose.yml's "
    "worker has it): the sandbox then binds the interpreter's folders into each child "
    "read-only, wherever they live. Otherwise install Python and the virtual environment in "
    "folders every user may enter (/usr/local, /opt, /srv). Do not open your home folder "
    "for it. docs/deployment.md has the details."
)


@dataclass
class SandboxCheck:
    ok: bool
    message: str = ""  # why it failed, for the operator: folder, uid, what to do
    warnings: list[str] = field(default_factory=list)
    filesystem: dict = field(default_factory=dict)


def sandbox_check(*, python: str | None = None) -> SandboxCheck:
    """Run the check as both sandbox uids; the first failure wins."""
    from workers.code_runner import predict_uid
    from workers.sandbox.forkserver import WarmEvaluator

    evaluator = WarmEvaluator(CHECK_ROOT, key="sandbox-check", python=python, one_shot=True)
    inputs = Path(tempfile.mkdtemp(prefix="evalserver-check-"))
    try:
        inputs.chmod(0o755)
        truth, submission = inputs / "truth.csv", inputs / "submission.csv"
        # With a byte-order mark: reading it takes the utf_8_sig codec, a lazy import.
        truth.write_text("\ufeffid,label\n1,a\n2,b\n", encoding="utf-8")
        submission.write_text("id,label\n1,a\n2,b\n", encoding="utf-8")
        for path in (truth, submission):
            path.chmod(0o644)
        checks = [("evaluate()", runner.sandbox_uid(), True, "full")]
        if predict_uid() is not None:
            checks.append(("predict()", predict_uid(), False, "light"))
        result = SandboxCheck(ok=True)
        for what, uid, writable_tmp, depth in checks:
            result = _check_one(
                evaluator, what, uid, writable_tmp, depth, truth, submission, result
            )
            if not result.ok:
                break
        return result
    finally:
        evaluator.shutdown()
        shutil.rmtree(inputs, ignore_errors=True)


def _check_one(
    evaluator, what, uid, writable_tmp, depth, truth, submission, result
) -> SandboxCheck:
    """One sandboxed run of the check script (it raises if it cannot write in its work
    folder); evaluate() children work in their own /tmp, models in a folder we give them."""
    work = None if writable_tmp else Path(tempfile.mkdtemp(prefix="evalserver-check-work-"))
    try:
        if work is not None and uid is not None:
            os.chown(work, uid, uid)
        reply = evaluator.call(
            request=runner.evaluate_request(
                annotation_file=truth,
                submission_file=submission,
                phase_codename=depth,
                metadata={},
            ),
            limits=LIMITS,
            uid=uid,
            work=work,
            expose=[str(truth), str(submission)],
            writable_tmp=writable_tmp,
        )
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    who = f"uid {uid if uid is not None else os.geteuid()}"
    if "script_error" in reply or "died" in reply or "error" in reply:
        detail = reply.get("script_error") or reply.get("died") or reply.get("error")
        return SandboxCheck(
            ok=False,
            message=f"The sandbox could not start a child for {what} ({who}): {detail}\n{WHAT_TO_DO}",
        )
    report = reply.get("report") or {}
    filesystem = report.get("filesystem") or {}
    if reply.get("timed_out") or not report:
        return SandboxCheck(
            ok=False,
            message=(
                f"A sandboxed child for {what} ({who}) died before reporting (exit status "
                f"{reply.get('returncode')}): {reply.get('stderr', '')[-2000:]}\n{WHAT_TO_DO}"
            ),
            filesystem=filesystem,
        )
    if not report.get("ok"):
        error = report.get("error", "")
        if report.get("kind") == "sandbox":
            problem = (
                f"A sandboxed child for {what} runs as {who} and cannot reach "
                f"{report.get('folder')}: {error}."
            )
        else:
            problem = f"A sandboxed child for {what} ({who}) failed: {error}."
        if filesystem.get("error"):
            problem += (
                f" Its own view of the file system could not be set up: {filesystem['error']}."
            )
        return SandboxCheck(
            ok=False,
            message=f"{problem}\n{WHAT_TO_DO}\n{report.get('traceback', '')[-3000:]}",
            filesystem=filesystem,
        )
    warnings = list(result.warnings)
    if filesystem.get("error"):
        warnings.append(
            f"{what} children share the machine's /tmp and /var/tmp ({filesystem['error']}); "
            "give the worker CAP_SYS_ADMIN for private ones."
        )
    return SandboxCheck(ok=True, warnings=warnings, filesystem=filesystem)


def refuse_unless_sandbox_works() -> None:
    """At worker start: log what the check found; SystemExit with its message if it failed."""
    result = sandbox_check()
    for warning in result.warnings:
        log.warning("sandbox: %s", warning)
    if not result.ok:
        message = "The evaluation sandbox failed its self-check; this worker will not start.\n"
        log.critical("%s%s", message, result.message)
        raise SystemExit(f"{message}{result.message}")
    log.info(
        "sandbox: self-check passed (covered %s)",
        ", ".join(result.filesystem.get("covered", [])) or "nothing",
    )
