"""A code submission's attempt: predict in the sandbox, check the predictions, then the
challenge's evaluate() on them, as for a file. Called by workers.evaluation.

Statuses: claimed as `predicting`, then `validating` once the model has run, `running`
for evaluate(); each step a conditional update for this attempt, so a cancel or a sweep
in between stops it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from challenges.models import Submission
from challenges.services.submissions import EvaluationRecord, submission_advance
from workers.sandbox.runner import Limits, isolation
from workers.scripts import local_files, stored

if TYPE_CHECKING:
    from workers.code_runner import PredictOutcome

log = logging.getLogger(__name__)
Status = Submission.Status
NO_NETWORK_ISOLATION = (
    "This worker cannot cut models off from the network (its kernel allows no network "
    "namespace), so it does not run code submissions. The operators have been told; the "
    "hosts can re-run this submission once a worker can."
)


def network_isolated() -> bool:
    return "--net" in isolation()


def code_refused() -> bool:
    """No network namespace and no operator's leave to run models without one."""
    return not network_isolated() and not settings.EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION


def code_limits(limits: Limits, resources: dict | None) -> Limits:
    """The model's limits: the phase's time and memory, one core unless `resources.cpus`."""
    cpus = int((resources or {}).get("cpus") or 1)
    return dataclasses.replace(limits, cpus=max(cpus, 1), max_file_mb=1024)


def work_root() -> Path:
    """Where models' working folders go: a root-only folder the model uid can only pass."""
    root = Path(settings.EVALUATION_CACHE_DIR) / "predict"
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)
    return root


def evaluate_code(
    submission: Submission,
    limits: Limits,
    *,
    evaluate: Callable[..., EvaluationRecord],
    record_base: Callable[[], dict],
) -> tuple[EvaluationRecord | None, str]:
    """(the record, the status it ends from); (None, "") when the attempt was taken over.
    `evaluate(submission, limits, submission_file=...)` runs the challenge's script."""
    phase = submission.phase
    if code_refused():
        log.error("submission %s: code submission refused, no network namespace", submission.pk)
        return _platform(NO_NETWORK_ISOLATION, record_base), Status.PREDICTING
    if not phase.test_input:
        return _platform(
            "This code phase has no test input file; the hosts must upload the bundle again.",
            record_base,
        ), Status.PREDICTING
    # Imported here: pandas stays out of the Celery worker until it runs a model.
    from workers.code_runner import check_predictions, run_predict

    prediction_range = tuple(phase.prediction_range) if phase.prediction_range else None
    staging = Path(tempfile.mkdtemp(prefix="evalserver-code-"))
    # From storage into this machine's cache, checked against their recorded sha256; the
    # model gets the features as a read-only link to the cached file, not a copy.
    inputs = local_files(
        stored(submission.input_file, submission.input_sha256),
        stored(phase.test_input, phase.test_input_sha256),
        stored(phase.test_extra, phase.test_extra_sha256) or os.devnull,
    )
    try:
        with inputs as (model_file, features_file, extra_file):
            predictions = staging / "predictions.csv"
            outcome = run_predict(
                model_file=model_file,
                features_file=features_file,
                extra_file=extra_file if phase.test_extra else None,
                output_file=predictions,
                limits=code_limits(limits, phase.resources),
                prediction_range=prediction_range,
                work_root=work_root(),
            )
            if not outcome.ok:
                return _failed(outcome, record_base), Status.PREDICTING
            if not submission_advance(
                submission=submission, from_status=Status.PREDICTING, to_status=Status.VALIDATING
            ):
                return None, ""
            check_predictions(
                outcome,
                predictions_file=predictions,
                features_file=features_file,
                prediction_range=prediction_range,
            )
        if not outcome.ok:
            return _failed(outcome, record_base), Status.VALIDATING
        if not submission_advance(
            submission=submission, from_status=Status.VALIDATING, to_status=Status.RUNNING
        ):
            return None, ""
        record = evaluate(submission, limits, submission_file=predictions)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if outcome.stdout or outcome.stderr:
        record.stdout = _joined("predict()", outcome.stdout, "evaluate()", record.stdout)
        record.stderr = _joined("predict()", outcome.stderr, "evaluate()", record.stderr)
    record.execution = {**(record.execution or {}), "predict": _predict_record(outcome)}
    return record, Status.RUNNING


def _joined(first: str, a: str, second: str, b: str) -> str:
    return f"--- {first} ---\n{a}\n--- {second} ---\n{b}" if a or b else ""


def _predict_record(outcome: PredictOutcome) -> dict:
    return {
        "rows": outcome.rows,
        "predict_s": round(outcome.predict_s, 4),
        "wall_s": round(outcome.wall_s, 4),
        "cpu_s": round(outcome.cpu_s, 4),
        "peak_memory_kb": outcome.max_rss_kb,
        "sandbox": outcome.sandbox,
    }


def _failed(outcome: PredictOutcome, record_base: Callable[[], dict]) -> EvaluationRecord:
    return EvaluationRecord(
        ok=False,
        scores={},
        missing_splits=[],
        failure_kind=outcome.failure,
        failure_message=outcome.message,
        traceback=outcome.traceback,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        wall_time_s=outcome.wall_s,
        execution={**record_base(), "predict": _predict_record(outcome)},
    )


def _platform(message: str, record_base: Callable[[], dict]) -> EvaluationRecord:
    return EvaluationRecord(
        ok=False,
        scores={},
        missing_splits=[],
        failure_kind="platform",
        failure_message=message,
        execution=dict(record_base()),
    )
