"""Running a participant's model (code submissions) in the sandbox of DESIGN section 6.

The model is untrusted, so on top of what evaluate() gets (own PID and network namespace,
rlimits on memory, CPU time, processes and file size, an empty environment, a wall clock)
its child: runs as a uid of its own (EVALUATION_PREDICT_UID, not the evaluate() uid that
may read staged annotation files), is pinned to one core, gets empty root-only /tmp,
/var/tmp, /dev/shm and /run/lock (evaluate() gets writable ones of its own), and works in a folder that holds
a copy of the model and read-only links to the features (and extra data) when the worker
is root, copies of them otherwise. It writes its predictions
there; the parent reads them back and checks them again, trusting nothing the child wrote.

A warm parent (workers.sandbox.forkserver, harness workers/harness/evalserver_predict.py) has
pandas, cloudpickle and scikit-learn imported already and forks one child per model, so
the sandbox adds tens of milliseconds, not the second a fresh interpreter takes.

No Django here: `python -m workers.predict` runs exactly this on a participant's machine.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workers.harness.evalserver_predict import (
    ID_COLUMN,
    PREDICTION,
    InvalidPredictions,
    read_features,
    validate_predictions,
    write_predictions,
)
from workers.sandbox import runner
from workers.sandbox.limits import Limits, django_setting

HARNESS_ROOT = Path(__file__).with_name("harness")
HARNESS_MODULE = "evalserver_predict"
PREDICT_UID = int(django_setting("EVALUATION_PREDICT_UID", 65533))
MAX_OUTPUT_MB = 1024
# Participant-facing failure classes (Submission.failure_kind).
KINDS = ("timeout", "memory", "exception", "invalid_output", "environment", "platform")


@dataclass
class PredictOutcome:
    ok: bool
    failure: str = ""  # one of KINDS, or "processes" / "network"
    message: str = ""  # for the participant: what went wrong and what to do
    traceback: str = ""
    stdout: str = ""
    stderr: str = ""
    predictions: Path | None = None  # the checked CSV for evaluate(), when ok
    rows: int = 0
    predict_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    sandbox: dict[str, Any] = field(default_factory=dict)


def predict_uid() -> int | None:
    """The uid models run as: PREDICT_UID when the worker is root, else the worker's own."""
    return PREDICT_UID if os.geteuid() == 0 else None


def network_isolated() -> bool:
    return "--net" in runner.isolation()


def feature_ids(path: Path | str) -> pd.Index:
    """The ids predictions must cover, as text (how they come back from the CSV). Cached
    per file version: a phase's input is read once per worker process, not per model."""
    info = os.stat(path)
    return _feature_ids(str(path), info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=8)
def _feature_ids(path: str, _mtime_ns: int, _size: int) -> pd.Index:
    # Only the id column is read: the features themselves (a thousand columns on Numerai)
    # are the model's business, and never need to be in this process's memory.
    column = _id_column(path)
    if column is None:  # ids are the row numbers
        return pd.Index(read_features(path).index.astype(str), name=ID_COLUMN)
    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        values = pq.read_table(path, columns=[column]).column(0).to_pandas()
    else:
        values = pd.read_csv(path, usecols=[column], dtype={column: str})[column]
    return pd.Index(values.astype(str), name=ID_COLUMN)


def _id_column(path: str) -> str | None:
    """Which column read_features makes the index, without reading the data."""
    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        stored = (schema.pandas_metadata or {}).get("index_columns", [])
        named = [c for c in stored if isinstance(c, str)]
        if named:
            return named[0]
        return ID_COLUMN if ID_COLUMN in schema.names else None
    header = list(pd.read_csv(path, nrows=0).columns)
    return ID_COLUMN if ID_COLUMN in header else header[0]


def run_predict(
    *,
    model_file: Path | str,
    features_file: Path | str,
    output_file: Path | str,
    limits: Limits,
    extra_file: Path | str | None = None,
    prediction_range: tuple[float, float] | None = None,
    work_root: Path | str | None = None,
    python: str | None = None,
) -> PredictOutcome:
    """Run the pickled predict() on the features in the sandbox. On success what the child
    wrote is copied to `output_file`, not yet trusted: `check_predictions` comes next.
    `python`: the runtime's interpreter (workers.runtimes), else the worker's own."""
    uid = predict_uid()
    work = Path(tempfile.mkdtemp(prefix="predict-", dir=work_root))
    try:
        work.chmod(0o700)
        features = _place(
            features_file, work / f"features{_suffix(features_file)}", uid, share=True
        )
        model = _place(model_file, work / "model.pkl", uid)
        extra = (
            _place(extra_file, work / f"extra{_suffix(extra_file)}", uid, share=True)
            if extra_file
            else None
        )
        output = work / "predictions.csv"
        if uid is not None:
            os.chown(work, uid, uid)
        request = runner.evaluate_request(
            annotation_file=features,
            submission_file=model,
            phase_codename=str(output),
            metadata={
                "extra_file": str(extra) if extra else None,
                "prediction_range": list(prediction_range) if prediction_range else None,
            },
        )
        from workers.sandbox.evaluators import get_evaluator

        python = python or sys.executable
        evaluator = get_evaluator(
            f"predict:{python}", HARNESS_ROOT, module=HARNESS_MODULE, python=python
        )
        reply = evaluator.call(
            request=request, limits=limits, uid=uid, work=work, writable_tmp=False, strict=True
        )
        outcome = classify_predict(reply, limits, uid=uid, warm_pid=evaluator.pid)
        if outcome.ok:
            try:
                _take_output(output, Path(output_file), uid)
            except InvalidPredictions as exc:
                _fail(outcome, "invalid_output", f"The predictions are not valid: {exc}")
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _suffix(path: Path | str | None) -> str:
    name = str(path).lower()
    return ".parquet" if name.endswith((".parquet", ".pq")) else ".csv"


def _place(source: Path | str, target: Path, uid: int | None, *, share: bool = False) -> Path:
    """The file for the model's uid. Shared data (`share`: the features, the extra file)
    that is read-only for everyone and not the model uid's own (the worker's cache, see
    workers.scripts.cached, when the worker is root) is hard-linked: a 1 GiB features file
    is not copied per model, and the model can read the link but neither write nor chmod
    it. Anything else gets a private copy: never a link whose mode we would have to change
    (a chmod of a hard link changes the original's)."""
    if share and _read_only_for_all(source, uid):
        try:
            os.link(source, target)
            return target
        except OSError:
            pass  # another file system: copy
    shutil.copyfile(source, target)
    target.chmod(0o600)
    if uid is not None:
        os.chown(target, uid, uid)
    return target


def _read_only_for_all(path: Path | str, uid: int | None) -> bool:
    """Can the model read `path` but neither write nor chmod it? Only when it runs as a uid
    of its own (a root worker): a non-root worker's model is the file's owner."""
    if uid is None:
        return False
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o444 and info.st_uid != uid


def _take_output(written: Path, target: Path, uid: int | None) -> None:
    """Copy the child's predictions file out of its folder as plain bytes: a regular file
    of its own (no symlink, no hard link to a file the child could not read), capped."""
    try:
        fd = os.open(written, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise InvalidPredictions("predict() left no predictions file behind.") from None
    with os.fdopen(fd, "rb") as src:
        info = os.fstat(src.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise InvalidPredictions("The predictions file was replaced by a link.")
        if uid is not None and info.st_uid != uid:
            raise InvalidPredictions("The predictions file is not the one the model wrote.")
        if info.st_size > MAX_OUTPUT_MB * 1024 * 1024:
            raise InvalidPredictions(f"The predictions file is larger than {MAX_OUTPUT_MB} MB.")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)


def check_predictions(
    outcome: PredictOutcome,
    *,
    predictions_file: Path | str,
    features_file: Path | str,
    prediction_range: tuple[float, float] | None = None,
) -> PredictOutcome:
    """The child checked its output already, but it ran the participant's code: read the
    CSV back as data, check it again and rewrite it in the features' order, in place.
    Marks the outcome failed ("invalid_output") when it is not valid."""
    if not outcome.ok:
        return outcome
    path = Path(predictions_file)
    try:
        frame = pd.read_csv(path, dtype={ID_COLUMN: str})
        if list(frame.columns) != [ID_COLUMN, PREDICTION]:
            raise InvalidPredictions(
                f"The predictions file has columns {list(frame.columns)}, not {[ID_COLUMN, PREDICTION]}."
            )
        checked = validate_predictions(
            frame.set_index(ID_COLUMN),
            ids=feature_ids(features_file),
            prediction_range=prediction_range,
        )
    except (InvalidPredictions, ValueError) as exc:
        return _fail(outcome, "invalid_output", f"The predictions are not valid: {exc}")
    write_predictions(checked, str(path))
    outcome.predictions, outcome.rows = path, len(checked)
    return outcome


def run_predict_checked(
    *,
    model_file: Path | str,
    features_file: Path | str,
    output_file: Path | str,
    limits: Limits,
    extra_file: Path | str | None = None,
    prediction_range: tuple[float, float] | None = None,
    work_root: Path | str | None = None,
    python: str | None = None,
) -> PredictOutcome:
    """`run_predict` then `check_predictions` on what it wrote, for callers with nothing to
    do in between (a model's validation run, a tournament round's run)."""
    outcome = run_predict(
        model_file=model_file,
        features_file=features_file,
        extra_file=extra_file,
        output_file=output_file,
        limits=limits,
        prediction_range=prediction_range,
        work_root=work_root,
        python=python,
    )
    return check_predictions(
        outcome,
        predictions_file=output_file,
        features_file=features_file,
        prediction_range=prediction_range,
    )


def classify_predict(reply: dict[str, Any], limits: Limits, *, uid, warm_pid) -> PredictOutcome:
    """The warm parent's reply for one model run, as a failure class the participant can
    act on (or success)."""
    cap = limits.log_max_bytes
    outcome = PredictOutcome(
        ok=False,
        stdout=runner.capped_text(
            reply.get("stdout", ""), truncated=reply.get("stdout_truncated"), cap=cap
        ),
        stderr=runner.capped_text(
            reply.get("stderr", ""), truncated=reply.get("stderr_truncated"), cap=cap
        ),
        wall_s=float(reply.get("wall_s", 0.0)),
        sandbox={
            "warm": True,
            "warm_parent_pid": warm_pid,
            "uid": uid if uid is not None else os.geteuid(),
            "cpus": limits.cpus,
            "python": platform.python_version(),
            "host": platform.node(),
            **reply.get("sandbox", {}),
        },
    )
    report = reply.get("report") or {}
    usage = {**reply, **report}
    outcome.cpu_s = float(usage.get("cpu_s") or 0.0)
    outcome.max_rss_kb = int(usage.get("max_rss_kb") or 0)
    if "script_error" in reply or "died" in reply or "error" in reply:
        detail = reply.get("script_error") or reply.get("died") or reply.get("error")
        return _fail(
            outcome,
            "platform",
            "The platform could not start the model sandbox; the operators have the details.",
            str(detail),
        )
    if reply.get("timed_out"):
        return _fail(
            outcome,
            "timeout",
            f"predict() did not finish within the time limit of {limits.time_limit_s:g} s and was stopped.",
        )
    if not report:
        return _fail(outcome, *_died_silently(outcome, reply.get("returncode", 0), limits))
    result = report.get("output") if report.get("ok") else report
    if not isinstance(result, dict):
        return _fail(outcome, "platform", "The model sandbox sent an unreadable report.")
    if result.get("ok"):
        outcome.ok = True
        outcome.predict_s = float(result.get("predict_s", 0.0))
        return outcome
    kind, error = result.get("kind", "exception"), result.get("error", "")
    if kind == "sandbox":
        return _fail(
            outcome,
            "platform",
            "The model sandbox cannot reach a folder it imports from; this is not a problem "
            "with your model, and the operators have been told.",
            error,
        )
    messages = {
        "memory": f"predict() exceeded the memory limit of {limits.memory_mb} MB ({error}).",
        "processes": f"predict() started more than the {limits.max_processes} processes allowed ({error}).",
        "network": f"predict() tried to use the network, which models cannot reach ({error}).",
        "invalid_output": f"predict() returned invalid output: {error}",
    }
    return _fail(outcome, kind, messages.get(kind, error), result.get("traceback", ""))


def _died_silently(outcome: PredictOutcome, returncode: int, limits: Limits) -> tuple[str, str]:
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
    cpu_limit = limits.cpu_limit_s
    if "BlockingIOError" in outcome.stderr or "Resource temporarily unavailable" in outcome.stderr:
        return (
            "processes",
            f"predict() started more than the {limits.max_processes} processes allowed.",
        )
    if (
        "MemoryError" in outcome.stderr
        or "Cannot allocate memory" in outcome.stderr
        or signum == 11
    ):
        return "memory", f"predict() exceeded the memory limit of {limits.memory_mb} MB."
    if signum in (24, 9) or outcome.cpu_s >= cpu_limit:  # SIGXCPU, then SIGKILL
        return "timeout", f"predict() used more than its CPU-time limit of {cpu_limit} s."
    return (
        "exception",
        f"The model's process ended (exit status {returncode}) before returning predictions.",
    )


def _fail(outcome: PredictOutcome, kind: str, message: str, tb: str = "") -> PredictOutcome:
    outcome.ok, outcome.failure, outcome.message, outcome.traceback = False, kind, message, tb
    return outcome
