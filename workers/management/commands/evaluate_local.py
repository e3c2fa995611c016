"""Run a bundle's evaluate() on a submission the way a worker will, before uploading."""

import json
import shutil
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from challenges.bundle import BundleError, load_bundle
from challenges.services.bundles import bundle_images, bundle_limits
from workers.sandbox.evaluators import run_evaluation
from workers.sandbox.runner import phase_limits
from workers.scripts import sandbox_readable


class Command(BaseCommand):
    help = (
        "Run the bundle's evaluate() on a submission file in the same limited child process a "
        "worker uses, check the result against the phase's splits and labels, and print it."
    )

    def add_arguments(self, parser):
        parser.add_argument("zip")
        parser.add_argument(
            "--phase", required=True, help="Phase codename, number (1, 2, ...) or name"
        )
        parser.add_argument("--submission", required=True, help="Submission file")
        parser.add_argument("--json", action="store_true", help="Print only the result as JSON")

    def handle(self, *args, **opts):
        submission = Path(opts["submission"]).resolve()
        if not submission.is_file():
            raise CommandError(f"Submission file {opts['submission']!r} does not exist.")
        try:
            bundle = load_bundle(opts["zip"], limits=bundle_limits(), **bundle_images())
        except FileNotFoundError as exc:
            raise CommandError(f"{opts['zip']}: {exc.strerror}") from None
        except BundleError as exc:
            for problem in exc.problems:
                self.stderr.write(f"{problem.severity}: {problem}")
            raise CommandError(
                "The bundle is invalid; fix it first (see validate_challenge)."
            ) from None
        workdir = Path(tempfile.mkdtemp(prefix="evaluate-local-"))
        try:
            with bundle:
                spec = bundle.spec
                phase = _find_phase(spec, opts["phase"])
                if phase is None:
                    known = ", ".join(p.codename for p in spec.phases)
                    raise CommandError(
                        f"No phase {opts['phase']!r} in the bundle (phases: {known})."
                    )
                splits = _phase_splits(spec, phase.id)
                annotation = (
                    workdir / "annotation" / Path(phase.test_annotation_file or "none").name
                )
                annotation.parent.mkdir()
                if phase.test_annotation_file:
                    with (
                        bundle.open(phase.test_annotation_file) as src,
                        annotation.open("wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst)
                inputs = {}
                for key in ("test_input_file", "test_extra_file"):
                    rel = getattr(phase, key) if phase.submission_type == "code" else None
                    if rel:
                        inputs[key] = workdir / "inputs" / key / Path(rel).name
                        inputs[key].parent.mkdir(parents=True)
                        with bundle.open(rel) as src, inputs[key].open("wb") as dst:
                            shutil.copyfileobj(src, dst)
                script_root = workdir / "script"
                package = script_root / "evaluation_script"
                for rel, content in spec.evaluation_script.files.items():
                    target = package / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                for path in [workdir, *workdir.rglob("*")]:
                    path.chmod(0o755 if path.is_dir() else 0o644)
            limits = phase_limits(phase.resources)
            if phase.submission_type == "code":
                submission = self._predict(phase, submission, inputs, limits, workdir)
            outcome = run_evaluation(
                script_root=script_root,
                annotation_file=annotation,
                submission_file=sandbox_readable(submission, workdir / "submission"),
                phase_codename=phase.codename,
                splits=splits,
                limits=limits,
                submission_metadata={
                    "id": 0,
                    "status": "running",
                    "participant_team_name": "local",
                },
                partial_ok=phase.is_partial_submission_evaluation_enabled,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

        if not opts["json"]:
            if outcome.stdout:
                self.stderr.write("--- stdout ---\n" + outcome.stdout.rstrip())
            if outcome.stderr:
                self.stderr.write("--- stderr ---\n" + outcome.stderr.rstrip())
            self.stderr.write(
                f"--- wall {outcome.wall_s:.3f} s, cpu {outcome.cpu_s:.3f} s, peak {outcome.max_rss_kb // 1024} MiB ---"
            )
        if not outcome.ok:
            if outcome.traceback:
                self.stderr.write(outcome.traceback.rstrip())
            raise CommandError(f"{outcome.failure}: {outcome.message}")
        for warning in outcome.parsed.warnings():
            # Accepted, as EvalAI accepts it, but likely a slip in the script: say so.
            self.stderr.write(_("Warning: %(warning)s") % {"warning": warning})
        result = {
            "result": outcome.parsed.scores,
            "submission_result": outcome.parsed.submission_result,
        }
        self.stdout.write(json.dumps(result, indent=None if opts["json"] else 2, sort_keys=True))

    def _predict(self, phase, model: Path, inputs: dict, limits, workdir: Path) -> Path:
        """A code phase: run the model in the sandbox a worker uses, check its predictions."""
        from workers.code_evaluation import code_limits
        from workers.code_runner import check_predictions, run_predict

        predictions = workdir / "predictions" / "predictions.csv"
        limits = code_limits(limits, phase.resources)
        prediction_range = tuple(phase.prediction_range) if phase.prediction_range else None
        outcome = run_predict(
            model_file=model,
            features_file=inputs["test_input_file"],
            extra_file=inputs.get("test_extra_file"),
            output_file=predictions,
            limits=limits,
            prediction_range=prediction_range,
        )
        check_predictions(
            outcome,
            predictions_file=predictions,
            features_file=inputs["test_input_file"],
            prediction_range=prediction_range,
        )
        if not outcome.ok:
            if outcome.traceback:
                self.stderr.write(outcome.traceback.rstrip())
            raise CommandError(f"{outcome.failure}: {outcome.message}")
        self.stderr.write(
            f"--- predict(): {outcome.rows} predictions in {outcome.wall_s:.3f} s ---"
        )
        predictions.parent.chmod(0o755)
        predictions.chmod(0o644)
        return predictions


def _find_phase(spec, wanted: str):
    """By codename, then number (CodaLab's phasenumber, Codabench's order), then name."""
    for match in (
        lambda p: p.codename == wanted,
        lambda p: wanted.isdigit() and p.id == int(wanted),
        lambda p: p.name.strip().lower() == wanted.strip().lower(),
    ):
        found = next((p for p in spec.phases if match(p)), None)
        if found is not None:
            return found
    return None


def _phase_splits(spec, phase_id: int) -> dict[str, list[str]]:
    splits = {s.id: s.codename for s in spec.dataset_splits}
    labels = {lb.id: lb.labels for lb in spec.leaderboards}
    return {
        splits[ps.dataset_split_id]: labels[ps.leaderboard_id]
        for ps in spec.phase_splits
        if ps.challenge_phase_id == phase_id
    }
