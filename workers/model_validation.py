"""A new model's run on the phase's validation data and its diagnostics (DESIGN section 16).

The model's predict() runs in the sandbox like a round run (workers.tournaments), under the
Python version it was pickled with; its predictions, checked and rewritten by the worker,
go to a child process that computes the diagnostics out of core (workers.diagnostics), so
the child's memory is its own and measured. A bot's uploaded validation predictions skip
the first part."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from challenges.models import Tournament, TournamentModel
from challenges.tournaments import model_runs
from workers.code_evaluation import NO_NETWORK_ISOLATION, code_limits, code_refused, work_root
from workers.evaluation import _db_retry
from workers.sandbox.runner import phase_limits
from workers.scripts import local_files, stored

log = logging.getLogger(__name__)
ModelStatus = TournamentModel.Status
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def validate_model(*, model_id: int, token: str = "") -> None:
    """Run a new model on the validation data, then diagnose its predictions. `token`
    names this message of the run: the upload's (""), or one the sweeper sent again."""
    if TournamentModel.objects.filter(
        pk=model_id, status=ModelStatus.VALIDATING, run_token=token
    ).exists():
        diagnose_model(model_id=model_id)  # delivered again after its predictions were kept
        return
    claimed = _db_retry(
        "claiming a model", lambda: model_runs.model_run_claim(model_id, token=token)
    )
    if not claimed:
        return  # another message of the run has it, or it ran already
    model = TournamentModel.objects.select_related("phase__challenge").get(pk=model_id)
    tournament = Tournament.objects.filter(phase=model.phase).first()
    if tournament is None or not tournament.validation_features:
        # Nothing to validate on: the round run (if any) decides; without one it is done.
        if not model.runs.exists():
            model_runs.model_round_run_succeeded(model_id)
        return
    try:
        kind, message, path = _predict(model, tournament)
    except Exception as exc:
        log.exception("platform error validating model %s", model_id)
        kind, message, path = "platform", _platform_message(exc), ""
    if kind:
        _db_retry(
            "recording a failure",
            lambda: model_runs.model_run_failed(model, kind=kind, message=message),
        )
        return
    _db_retry(
        "recording validation predictions",
        lambda: model_runs.model_validated(model_id, predictions_path=path),
    )
    diagnose_model(model_id=model_id)


def diagnose_model(*, model_id: int) -> None:
    """Diagnostics of the model's validation predictions (status validating)."""
    model = TournamentModel.objects.select_related("phase").get(pk=model_id)
    if model.status != ModelStatus.VALIDATING:
        return
    tournament = Tournament.objects.get(phase=model.phase)
    try:
        result = _diagnose(model, tournament)
    except Exception as exc:
        log.exception("platform error diagnosing model %s", model_id)
        model_runs.model_run_failed(model, kind="platform", message=_platform_message(exc))
        return
    if "error" in result:
        model_runs.model_run_failed(
            model,
            kind="invalid_output",
            message=f"The validation predictions cannot be diagnosed: {result['error']}",
        )
        return
    _db_retry(
        "recording diagnostics",
        lambda: model_runs.model_diagnostics_record(model_id, diagnostics=result),
    )


def _platform_message(exc: Exception) -> str:
    return (
        f"The platform could not run your model ({type(exc).__name__}); the hosts have been told."
    )


def _predict(model: TournamentModel, tournament: Tournament) -> tuple[str, str, str]:
    """(failure kind, message, "") or ("", "", stored predictions path)."""
    if code_refused():
        return "platform", NO_NETWORK_ISOLATION, ""
    from workers.code_runner import run_predict_checked
    from workers.runtimes import RuntimeUnavailable, runtime_python

    phase = model.phase
    try:
        python = runtime_python(model.python_version)
    except RuntimeUnavailable as exc:
        log.error("model %s: %s", model.pk, exc)
        return "platform", _platform_message(exc), ""
    limits = code_limits(phase_limits(phase.resources), phase.resources)
    prediction_range = tuple(phase.prediction_range) if phase.prediction_range else None
    staging = Path(tempfile.mkdtemp(prefix="evalserver-validate-"))
    inputs = local_files(
        stored(model.file, model.sha256),
        stored(tournament.validation_features, tournament.validation_features_sha256),
    )
    try:
        output = staging / "validation_predictions.csv"
        with inputs as (model_file, features_file):
            outcome = run_predict_checked(
                model_file=model_file,
                features_file=features_file,
                output_file=output,
                limits=limits,
                prediction_range=prediction_range,
                work_root=work_root(),
                python=python,
            )
        if not outcome.ok:
            return outcome.failure, outcome.message, ""
        with output.open("rb") as stream:
            folder = f"validation-predictions/{phase.challenge_id}/{phase.pk}/{model.team_id}"
            path = default_storage.save(f"{folder}/model-{model.pk}.csv", File(stream))
        return "", "", path
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _diagnose(model: TournamentModel, tournament: Tournament) -> dict:
    files = [stored(tournament.validation_features, tournament.validation_features_sha256)]
    if tournament.example_predictions:
        files.append(stored(tournament.example_predictions, tournament.example_predictions_sha256))
    staging = Path(tempfile.mkdtemp(prefix="evalserver-diagnose-"))
    try:
        # The predictions are the model's own: no cache entry, a private copy.
        predictions = staging / "predictions.csv"
        with (
            default_storage.open(model.validation_predictions.name, "rb") as src,
            predictions.open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst, 1024 * 1024)
        with local_files(*files) as local:
            return run_diagnostics(
                features=local[0],
                predictions=predictions,
                example=local[1] if len(local) > 1 else None,
                neutral=tournament.feature_neutral,
                time_limit_s=phase_limits(model.phase.resources).time_limit_s,
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_diagnostics(
    *, features, predictions, example=None, neutral=False, time_limit_s: float = 3600
) -> dict:
    """workers.diagnostics in a child process: its result, with the child's peak memory."""
    command = [sys.executable, "-m", "workers.diagnostics", str(features), str(predictions)]
    if example:
        command += ["--example", str(example)]
    if neutral:
        command.append("--neutral")
    # Arrow's C++ default pool is chosen once, from the environment, when pyarrow loads:
    # malloc's (system) gives freed buffers back, mimalloc's keeps them in the child's peak.
    env = {
        "PATH": os.defpath,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ARROW_DEFAULT_MEMORY_POOL": "system",
    }
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=time_limit_s, env=env, cwd=PROJECT_ROOT
    )
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(
            f"diagnostics child failed ({proc.returncode}): {proc.stderr[-2000:]}"
        ) from None
