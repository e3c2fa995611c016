"""Runs a participant's model inside the sandbox, and checks what it returned.

Imported in two ways, so it uses nothing of the project (numpy, pandas and cloudpickle
only): by the warm predict parent (workers.code_runner), which runs `python -I` with only
this folder on sys.path and forks a limited child per submission, and by the worker and
`python -m workers.predict` for the checks (`validate_predictions`, `read_features`).

The warm parent calls `evaluate()` through the evaluate() protocol it shares with the
evaluation children: annotation file = the features, submission file = the model,
phase codename = the output file, and `submission_metadata` carries the rest (extra data,
allowed prediction range). It returns a report, never raises: `{"ok": True, "rows": n}`
or `{"ok": False, "kind": ..., "error": ..., "traceback": ...}`.
"""

from __future__ import annotations

import dis
import errno
import os
import platform
import socket
import sys
import time
import traceback
import types
from importlib import metadata

import cloudpickle  # noqa: F401 - preloaded: models are cloudpickle files
import numpy as np
import pandas as pd

# Preloaded in the warm parent so that a model's unpickling does not import them again in
# every child (scikit-learn alone takes about half a second). Missing ones are fine.
for _name in ("sklearn", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing"):
    try:
        __import__(_name)
    except Exception:  # noqa: S112 - a runtime without scikit-learn still runs models
        continue

PREDICTION = "prediction"
ID_COLUMN = "id"
RUNTIME_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "cloudpickle", "pyarrow")
MAX_EXAMPLES = 5
SMALL_PICKLE = 64 * 1024 * 1024


class InvalidPredictions(ValueError):
    """predict() returned something that cannot be scored. The message says what."""


def runtime_summary() -> str:
    """'Python 3.11.7; numpy 2.3.1, pandas ...': what a model must be built with."""
    versions = []
    for name in RUNTIME_PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return f"Python {platform.python_version()}; {', '.join(versions)}"


# ---------------------------------------------------------------- the input


def read_features(path: str) -> pd.DataFrame:
    """The features a model predicts on. Parquet keeps its stored index; otherwise (and
    for CSV) an `id` column becomes the index, or else the first column does."""
    lowered = str(path).lower()
    if lowered.endswith((".parquet", ".pq")):
        frame = pd.read_parquet(path)
        if isinstance(frame.index, pd.RangeIndex) and ID_COLUMN in frame.columns:
            frame = frame.set_index(ID_COLUMN)
        return frame
    frame = pd.read_csv(path, dtype={ID_COLUMN: str})
    return frame.set_index(ID_COLUMN if ID_COLUMN in frame.columns else frame.columns[0])


# ---------------------------------------------------------------- the output


def _examples(values) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:MAX_EXAMPLES])
    return shown + (f" and {len(values) - MAX_EXAMPLES} more" if len(values) > MAX_EXAMPLES else "")


def validate_predictions(
    output, *, ids: pd.Index, prediction_range: tuple[float, float] | None = None
) -> pd.DataFrame:
    """What predict() returned, checked: a DataFrame indexed by exactly the input's ids
    (any order; none missing, extra or repeated) with one numeric, finite `prediction`
    column, inside `prediction_range` if the phase sets one. Returns it in the input's
    order, as float64. Raises InvalidPredictions saying what is wrong."""
    how = "return pd.DataFrame({'prediction': values}, index=features.index)"
    if not isinstance(output, pd.DataFrame):
        raise InvalidPredictions(
            f"predict() returned {type(output).__module__}.{type(output).__qualname__}, not a "
            f"pandas DataFrame; {how}."
        )
    columns = [str(c) for c in output.columns]
    if PREDICTION not in columns:
        raise InvalidPredictions(
            f"The DataFrame has no {PREDICTION!r} column (its columns: {_examples(columns) or 'none'}); {how}."
        )
    if columns != [PREDICTION]:
        raise InvalidPredictions(
            f"The DataFrame must have exactly one column, {PREDICTION!r}; it has {len(columns)}: "
            f"{_examples(columns)}. Put the ids in the index, not in a column."
        )
    values = output.iloc[:, 0]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        raise InvalidPredictions(
            f"Column {PREDICTION!r} holds {values.dtype} values, not numbers; convert it with .astype(float)."
        )
    index = output.index
    repeated = index[index.duplicated()].unique()
    if len(repeated):
        raise InvalidPredictions(
            f"{len(repeated)} id(s) appear more than once in the index: {_examples(repeated)}."
        )
    expected = pd.Index(ids)
    missing = expected.difference(index, sort=False)
    if len(missing):
        raise InvalidPredictions(
            f"{len(missing)} of the {len(expected)} input id(s) have no prediction: {_examples(missing)}. "
            "Keep the index of the features you were given."
        )
    extra = index.difference(expected, sort=False)
    if len(extra):
        raise InvalidPredictions(
            f"{len(extra)} id(s) in the index are not in the input: {_examples(extra)}."
        )
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise InvalidPredictions(
            f"{int(bad.sum())} prediction(s) are NaN or infinite, for example for id(s) "
            f"{_examples(index[bad])}."
        )
    if prediction_range is not None:
        low, high = prediction_range
        outside = (numbers < low) | (numbers > high)
        if outside.any():
            first = numbers[outside][:MAX_EXAMPLES]
            raise InvalidPredictions(
                f"{int(outside.sum())} prediction(s) are outside the allowed range [{low:g}, {high:g}], "
                f"for example {', '.join(f'{v:g}' for v in first)} for id(s) {_examples(index[outside])}."
            )
    checked = pd.DataFrame({PREDICTION: numbers}, index=index)
    return checked.reindex(expected)


def write_predictions(frame: pd.DataFrame, path: str) -> None:
    """The CSV that evaluate() gets: `id,prediction`, floats written so they read back exactly."""
    frame.to_csv(path, index_label=ID_COLUMN, float_format="%.17g", lineterminator="\n")


# ---------------------------------------------------------------- in the sandbox


def _failure(kind: str, error: str, tb: str = "") -> dict:
    return {"ok": False, "kind": kind, "error": error, "traceback": tb}


def _exception_kind(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, BlockingIOError) and exc.errno == errno.EAGAIN:
        return "processes"
    if isinstance(exc, socket.gaierror) or (
        isinstance(exc, OSError)
        and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL)
    ):
        return "network"
    return "exception"


def _module_version(module: str) -> str:
    """The runtime's version of the distribution that provides `module` ("sklearn" ->
    scikit-learn 1.7.2), or that it has none."""
    top = (module or "").split(".")[0]
    try:
        names = metadata.packages_distributions().get(top) or [top]
    except Exception:
        names = [top]
    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return f"no {top}" if top else "unknown"


def _mismatch(what: str, exc: BaseException) -> str:
    # "version mismatch: <what> (this runtime: <version>)": the participant sees which
    # module or pickle feature did not load and what the runtime has instead.
    return (
        f"version mismatch: {what} did not load ({type(exc).__name__}: {exc}); this runtime "
        f"has {runtime_summary()}. Pickle the model under the same versions, or choose the "
        "Python version it was pickled with."
    )


def load_model(path: str):
    """The participant's function; raises _ModelError (kind, message) when it is unusable."""
    try:
        with open(path, "rb") as fh:
            model = cloudpickle.load(fh)
    except ModuleNotFoundError as exc:
        raise _ModelError(
            "environment",
            _mismatch(f"the module {exc.name!r} ({_module_version(exc.name or '')})", exc),
        ) from exc
    except ImportError as exc:
        name = getattr(exc, "name", None) or ""
        raise _ModelError(
            "environment", _mismatch(f"the module {name!r} ({_module_version(name)})", exc)
        ) from exc
    except AttributeError as exc:
        # "module 'sklearn.x' has no attribute 'Y'" / "Can't get attribute 'Y' on <module 'x'>"
        name = getattr(getattr(exc, "obj", None), "__name__", "") or getattr(exc, "name", "")
        what = f"{name!r} ({_module_version(name)})" if name else "an attribute"
        raise _ModelError("environment", _mismatch(what, exc)) from exc
    except MemoryError as exc:
        if os.path.getsize(path) > SMALL_PICKLE:
            raise
        # A small file cannot need the memory limit: a function's bytecode pickled under
        # another Python is read with shifted fields (a stack size of gigabytes).
        raise _ModelError(
            "environment", _mismatch(f"the pickle (Python {platform.python_version()} here)", exc)
        ) from exc
    except (ValueError, TypeError, SystemError, EOFError, KeyError) as exc:
        text = str(exc)
        if "pickle protocol" in text or "code" in text or isinstance(exc, (TypeError, SystemError)):
            # A newer pickle protocol, or a function's bytecode from another Python
            # (cloudpickle pickles code objects, which change between minor versions).
            raise _ModelError(
                "environment",
                _mismatch(f"the pickle (Python {platform.python_version()} here)", exc),
            ) from exc
        raise _ModelError(
            "exception",
            f"The model file could not be unpickled ({type(exc).__name__}: {exc}); upload a "
            "file written with cloudpickle.dump(predict, f).",
        ) from exc
    except Exception as exc:
        raise _ModelError(
            "exception",
            f"The model file could not be unpickled ({type(exc).__name__}: {exc}); upload a "
            "file written with cloudpickle.dump(predict, f).",
        ) from exc
    _check_bytecode(model)
    if not callable(model):
        raise _ModelError(
            "invalid_output",
            f"The model file holds a {type(model).__qualname__}, not a function predict(features); "
            "pickle a function that calls your model and returns a DataFrame.",
        )
    return model


def _check_bytecode(model) -> None:
    """cloudpickle pickles a function's bytecode, which changes between Python minor
    versions and loads without complaint under the wrong one (then crashes when called):
    read it with this Python's `dis` first, and name the mismatch."""
    call = vars(type(model)).get("__call__")
    code = getattr(model, "__code__", None) or getattr(call, "__code__", None)
    pending = [code] if code is not None else []
    seen = 0
    while pending and seen < 1000:
        current = pending.pop()
        seen += 1
        try:
            for instruction in dis.get_instructions(current):
                if instruction.opname.startswith("<"):
                    raise ValueError(f"unknown opcode {instruction.opcode}")
        except Exception as exc:
            raise _ModelError(
                "environment",
                _mismatch(
                    f"the bytecode of {getattr(current, 'co_name', '?')}() "
                    f"(Python {platform.python_version()} here)",
                    exc,
                ),
            ) from exc
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))


class _ModelError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def evaluate(features_file, model_file, output_file, submission_metadata=None, **kwargs) -> dict:
    """Load, predict, check, write. See the module docstring for the protocol."""
    options = submission_metadata or {}
    try:
        features = read_features(features_file)
        extra = read_features(options["extra_file"]) if options.get("extra_file") else None
    except MemoryError as exc:
        return _failure("memory", f"MemoryError reading the input ({exc})", traceback.format_exc())
    except Exception as exc:
        return _failure(
            "platform",
            f"The phase's input could not be read ({type(exc).__name__}: {exc}).",
            traceback.format_exc(),
        )
    ids = features.index.copy()
    try:
        predict = load_model(model_file)
    except _ModelError as exc:
        return _failure(exc.kind, exc.message, traceback.format_exc())
    except BaseException as exc:
        return _failure(
            _exception_kind(exc), f"{type(exc).__name__}: {exc}", traceback.format_exc()
        )
    started = time.monotonic()
    try:
        output = predict(features) if extra is None else predict(features, extra)
    except BaseException as exc:  # everything the model raises is reported, not re-raised
        return _failure(
            _exception_kind(exc),
            f"predict() raised {type(exc).__name__}: {exc}",
            traceback.format_exc(),
        )
    predict_s = time.monotonic() - started
    low_high = options.get("prediction_range")
    try:
        checked = validate_predictions(
            output, ids=ids, prediction_range=tuple(low_high) if low_high else None
        )
        write_predictions(checked, output_file)
    except InvalidPredictions as exc:
        return _failure("invalid_output", str(exc))
    except BaseException as exc:
        return _failure(
            _exception_kind(exc), f"{type(exc).__name__}: {exc}", traceback.format_exc()
        )
    sys.stdout.flush()
    return {"ok": True, "rows": len(checked), "predict_s": predict_s}
