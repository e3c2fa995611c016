"""Run a model the way a code-submission phase runs it, on your own machine.

    python -m workers.predict --model model.pkl --features live.parquet [--extra extra.csv]
        [--time-limit-s 600] [--memory-mb 4096] [--cpus 1] [--max-processes 64]
        [--prediction-range 0 1] [--output predictions.csv] [--python 3.12]

Same sandbox (workers.code_runner: own process, no network where the kernel allows a
namespace, memory, CPU-time, wall-clock and process limits, one core, empty environment,
a folder holding only the features), same checks of the output, same failure class as the
platform. Prints the class and the message and exits 1 when the model fails, 0 when the
predictions are valid (and written to --output). Needs no Django and no database.

`--python 3.12` runs the model under that Python as the platform's 3.12 runtime does (the
interpreter from PREDICT_PYTHONS="3.12=/path/to/python", else `python3.12` on PATH, or a
path given directly); it needs numpy, pandas and cloudpickle installed, at the versions
`evalserver-cli runtime` lists, to reproduce a "version mismatch" failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from workers.code_runner import (
    PredictOutcome,
    check_predictions,
    network_isolated,
    run_predict,
)
from workers.sandbox.runner import Limits

DEFAULTS = Limits(time_limit_s=600.0, memory_mb=4096, max_processes=64, cpus=1, max_file_mb=1024)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workers.predict",
        description="Run a pickled predict(features) in the platform's sandbox and check its output.",
    )
    parser.add_argument("--model", type=Path, required=True, help="cloudpickle file of predict()")
    parser.add_argument(
        "--features", type=Path, required=True, help="features (Parquet or CSV; `id` index)"
    )
    parser.add_argument("--extra", type=Path, help="extra data: predict(features, extra)")
    parser.add_argument("--output", type=Path, default=Path("predictions.csv"))
    parser.add_argument("--time-limit-s", type=float, default=DEFAULTS.time_limit_s)
    parser.add_argument("--memory-mb", type=int, default=DEFAULTS.memory_mb)
    parser.add_argument("--cpus", type=int, default=DEFAULTS.cpus)
    parser.add_argument("--max-processes", type=int, default=DEFAULTS.max_processes)
    parser.add_argument(
        "--prediction-range", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None
    )
    parser.add_argument(
        "--python",
        help="Python version the model was pickled with (3.12), or an interpreter's path",
    )
    args = parser.parse_args(argv)
    if args.python:
        args.interpreter = interpreter_for(args.python)
        if args.interpreter is None:
            parser.error(f"no interpreter for Python {args.python}: set PREDICT_PYTHONS or PATH")
    else:
        args.interpreter = None
    for path in (args.model, args.features, args.extra):
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")
    return args


def interpreter_for(value: str) -> str | None:
    """An interpreter's path, or the one PREDICT_PYTHONS or PATH gives for a version."""
    if os.sep in value:
        return value if Path(value).is_file() else None
    for item in os.environ.get("PREDICT_PYTHONS", "").split(","):
        version, _sep, path = item.partition("=")
        if version.strip() == value and path.strip():
            return path.strip()
    return shutil.which(f"python{value}")


def report(outcome: PredictOutcome, output: Path) -> str:
    if outcome.ok:
        return (
            f"OK: {outcome.rows} predictions written to {output} "
            f"(predict {outcome.predict_s:.3f} s, sandbox wall {outcome.wall_s:.3f} s, "
            f"peak memory {outcome.max_rss_kb // 1024} MB)"
        )
    return f"FAILED [{outcome.failure}]: {outcome.message}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not network_isolated():
        print(
            "warning: this kernel allows no new network namespace; here the model can reach "
            "the network (on the platform it cannot).",
            file=sys.stderr,
        )
    limits = Limits(
        time_limit_s=args.time_limit_s,
        memory_mb=args.memory_mb,
        max_processes=args.max_processes,
        cpus=args.cpus,
        max_file_mb=DEFAULTS.max_file_mb,
    )
    prediction_range = tuple(args.prediction_range) if args.prediction_range else None
    outcome = run_predict(
        model_file=args.model,
        features_file=args.features,
        output_file=args.output,
        limits=limits,
        extra_file=args.extra,
        prediction_range=prediction_range,
        python=args.interpreter,
    )
    check_predictions(
        outcome,
        predictions_file=args.output,
        features_file=args.features,
        prediction_range=prediction_range,
    )
    if outcome.stdout:
        print(outcome.stdout, end="" if outcome.stdout.endswith("\n") else "\n")
    if outcome.stderr:
        print(outcome.stderr, end="" if outcome.stderr.endswith("\n") else "\n", file=sys.stderr)
    if outcome.traceback:
        print(outcome.traceback, file=sys.stderr)
    print(report(outcome, args.output))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
