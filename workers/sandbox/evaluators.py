"""Which warm parent runs an evaluation: a worker process keeps one per script version
(`get_evaluator`, at most MAX_WARM, least recently used first out); `run_evaluation`
starts one for a single call (what `evaluate_local` uses), so a host's local check
fails exactly where a worker would.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from workers.sandbox import runner
from workers.sandbox.forkserver import WarmEvaluator
from workers.sandbox.limits import Limits, django_setting
from workers.sandbox.runner import Outcome

MAX_WARM = int(django_setting("EVALUATION_MAX_WARM", 8))


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
    """Run `script_root/evaluation_script`'s evaluate() once, in the sandbox workers use.

    A warm parent for this one call (it imports the script, forks one limited child and
    stops): what `evaluate_local` uses. Workers keep the warm parent instead
    (`get_evaluator`: same arguments, same `Outcome`).
    """
    evaluator = WarmEvaluator(script_root, key=f"once:{script_root}", one_shot=True)
    try:
        return evaluator.run(
            annotation_file=annotation_file,
            submission_file=submission_file,
            phase_codename=phase_codename,
            splits=splits,
            limits=limits,
            submission_metadata=submission_metadata,
            partial_ok=partial_ok,
        )
    finally:
        evaluator.shutdown()


_evaluators: OrderedDict[str, WarmEvaluator] = OrderedDict()
_evaluators_lock = threading.Lock()


def get_evaluator(
    key: str,
    script_root: Path | str,
    *,
    max_warm: int | None = None,
    module: str = runner.SCRIPT_PACKAGE,
    python: str | None = None,
) -> WarmEvaluator:
    """The process-wide warm parent for `key` (a challenge's script version), created on first
    use; the least recently used ones are shut down beyond `max_warm` (default MAX_WARM)."""
    evicted = []
    with _evaluators_lock:
        evaluator = _evaluators.get(key)
        if evaluator is not None and (
            evaluator.script_root != Path(script_root)
            or evaluator.python != (python or sys.executable)
        ):
            evicted.append(_evaluators.pop(key))
            evaluator = None
        if evaluator is None:
            evaluator = _evaluators[key] = WarmEvaluator(
                script_root, key=key, module=module, python=python
            )
        _evaluators.move_to_end(key)
        while len(_evaluators) > (max_warm or MAX_WARM):
            evicted.append(_evaluators.popitem(last=False)[1])
    for old in evicted:
        old.shutdown()
    return evaluator


def shutdown_all() -> None:
    with _evaluators_lock:
        evaluators = list(_evaluators.values())
        _evaluators.clear()
    for evaluator in evaluators:
        with contextlib.suppress(Exception):
            evaluator.shutdown()


def _forget_after_fork() -> None:
    # A forked worker (Celery's prefork pool) starts with no warm parents of its own; the
    # ones it inherited belong to the process that started them.
    global _evaluators_lock
    _evaluators_lock = threading.Lock()
    _evaluators.clear()


atexit.register(shutdown_all)
os.register_at_fork(after_in_child=_forget_after_fork)
