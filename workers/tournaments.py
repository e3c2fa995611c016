"""A tournament round's work on a worker: run one team's model on the round's live
features (the code-phase sandbox, workers.code_runner), and score one round submission
with the host's evaluate() (the warm parent of the script, workers.evaluation)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from challenges.models import RoundSubmission
from challenges.services.storage import sha256_stream
from challenges.tournaments import (
    RunRecord,
    round_run_claim,
    round_run_record,
    round_score_record,
)
from challenges.tournaments.metrics import PerEraError, era_metrics, per_era_from_output
from workers.code_evaluation import NO_NETWORK_ISOLATION, code_limits, code_refused, work_root
from workers.evaluation import _db_retry, phase_script_and_splits, run_in_sandbox, runtime_versions
from workers.sandbox.runner import phase_limits
from workers.scripts import local_files, staged, stored

log = logging.getLogger(__name__)
Status = RoundSubmission.Status


def run_round_model(*, run_id: int, worker_node: str) -> None:
    """One team's model on one round. Does nothing if another worker has it."""
    row = (
        RoundSubmission.objects.filter(pk=run_id)
        .values_list("round__phase__resources", flat=True)
        .first()
    )
    if row is None:
        return
    limits = code_limits(phase_limits(row), row)
    run = _db_retry(
        "claiming a model run",
        lambda: round_run_claim(
            run_id=run_id,
            worker=f"{worker_node}/{os.getpid()}#{uuid.uuid4().hex[:8]}",
            time_limit_s=limits.time_limit_s,
        ),
    )
    if run is None:
        return
    try:
        record = _predict(run, limits)
    except Exception as exc:
        log.exception("platform error running model of round submission %s", run_id)
        record = RunRecord(
            ok=False,
            failure_kind="platform",
            failure_message=f"The platform could not run your model ({type(exc).__name__}); "
            "the hosts have been told.",
        )
    _db_retry("recording a model run", lambda: round_run_record(run=run, record=record))


def _predict(run: RoundSubmission, limits) -> RunRecord:
    if code_refused():
        return RunRecord(ok=False, failure_kind="platform", failure_message=NO_NETWORK_ISOLATION)
    if run.model is None:
        return RunRecord(
            ok=False, failure_kind="platform", failure_message="The model was deleted."
        )
    # Imported here: pandas stays out of the Celery worker until it runs a model.
    from workers.code_runner import run_predict_checked
    from workers.runtimes import RuntimeUnavailable, runtime_python

    try:
        python = runtime_python(run.model.python_version)
    except RuntimeUnavailable as exc:
        log.error("model %s: %s", run.model_id, exc)
        return RunRecord(
            ok=False,
            failure_kind="platform",
            failure_message="The platform could not prepare the model's Python runtime; "
            "the hosts have been told.",
        )

    phase, opened = run.round.phase, run.round
    prediction_range = tuple(phase.prediction_range) if phase.prediction_range else None
    staging = Path(tempfile.mkdtemp(prefix="evalserver-round-"))
    inputs = local_files(
        stored(run.model.file, run.model.sha256),
        stored(opened.live_features, opened.live_features_sha256),
        stored(phase.test_extra, phase.test_extra_sha256) or os.devnull,
    )
    try:
        output = staging / "predictions.csv"
        with inputs as (model_file, features_file, extra_file):
            outcome = run_predict_checked(
                model_file=model_file,
                features_file=features_file,
                extra_file=extra_file if phase.test_extra else None,
                output_file=output,
                limits=limits,
                prediction_range=prediction_range,
                work_root=work_root(),
                python=python,
            )
        execution = {
            **runtime_versions(),
            "predict_s": round(outcome.predict_s, 4),
            "wall_s": round(outcome.wall_s, 4),
            "cpu_s": round(outcome.cpu_s, 4),
            "peak_memory_kb": outcome.max_rss_kb,
            "model_sha256": run.model.sha256,
        }
        base = {
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "execution": execution,
        }
        if not outcome.ok:
            return RunRecord(
                ok=False,
                failure_kind=outcome.failure,
                failure_message=outcome.message,
                traceback=outcome.traceback,
                **base,
            )
        with output.open("rb") as stream:
            sha, _size = sha256_stream(stream)
            stream.seek(0)
            folder = f"round-predictions/{phase.challenge_id}/{opened.pk}/{run.team_id}"
            path = default_storage.save(f"{folder}/model-{run.pk}-{run.attempt}.csv", File(stream))
        return RunRecord(
            ok=True, predictions_path=path, predictions_sha256=sha, rows=outcome.rows, **base
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def score_round_submission(*, submission_id: int, targets_version: int) -> None:
    """Score one round submission against the round's targets of `targets_version`."""
    sub = (
        RoundSubmission.objects.select_related("round__phase__challenge", "team")
        .filter(pk=submission_id, status=Status.SCORING, targets_version=targets_version)
        .first()
    )
    if sub is None:
        return  # scored already, or newer targets came (their own task scores it)
    phase = sub.round.phase
    script, splits = phase_script_and_splits(phase)
    scores = per_era = None
    message = traceback = ""
    try:
        if script is None:
            raise RuntimeError(f"challenge {phase.challenge_id} has no evaluation script")
        inputs = local_files(
            stored(sub.round.targets, sub.round.targets_sha256),
            stored(sub.predictions, sub.predictions_sha256),
        )
        with inputs as local, staged(*local) as (targets, predictions):
            outcome = run_in_sandbox(
                script=script,
                annotation_file=targets,
                submission_file=predictions,
                phase_codename=phase.codename,
                splits=splits,
                limits=phase_limits(phase.resources),
                submission_metadata={
                    "id": sub.pk,
                    "participant_team": sub.team_id,
                    "participant_team_name": sub.team.name,
                    "challenge_phase": phase.pk,
                    "round": sub.round.number,
                    "data_version": sub.round.data_version,
                },
                partial_ok=True,
            )
        if outcome.ok:
            per_era = per_era_from_output(
                {"submission_metadata": outcome.parsed.submission_metadata}
            )
            scores = {**era_metrics(list(per_era.values())), "splits": outcome.parsed.scores}
        else:
            message, traceback = outcome.message, outcome.traceback
    except PerEraError as exc:
        message = str(exc)
    except Exception as exc:
        log.exception("platform error scoring round submission %s", submission_id)
        message = f"The platform could not score this submission ({type(exc).__name__})."
    _db_retry(
        "recording a score",
        lambda: round_score_record(
            submission_id=submission_id,
            targets_version=targets_version,
            scores=scores,
            per_era=per_era,
            failure_message=message,
            traceback=traceback,
        ),
    )
