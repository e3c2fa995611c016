"""Runs inside the limited child process: import the evaluation script, call evaluate(),
write what it returned (or why it failed) as JSON. Standard library only: it starts with an
empty environment and is run by path, not as part of the project.

`child.py REQUEST RESULT` is the cold path (workers.runner). The warm path
(workers/warm_parent.py) imports this file and uses the same functions, so a warm child
calls evaluate() and reports exactly as a cold one does.
"""

from __future__ import annotations

import errno
import importlib
import json
import math
import os
import resource
import socket
import sys
import time
import traceback


def _jsonable(value, depth=0):
    if depth > 50:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if hasattr(value, "item"):  # numpy scalars
        try:
            return _jsonable(value.item(), depth + 1)
        except Exception:
            return repr(value)
    return repr(value)


class ScriptError(Exception):
    """The script cannot be used at all: its import failed or it has no evaluate()."""

    def __init__(self, error: str, tb: str = "") -> None:
        super().__init__(error)
        self.error, self.tb = error, tb

    def report(self) -> dict:
        return {"ok": False, "kind": "script", "error": self.error, "traceback": self.tb}


def load_evaluate(script_root: str, module: str):
    sys.path.insert(0, script_root)
    try:
        loaded = importlib.import_module(module)
    except MemoryError:
        raise
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit at import time...
        raise ScriptError(
            f"{module} could not be imported: {type(exc).__name__}: {exc}",
            traceback.format_exc(),
        ) from None
    evaluate = getattr(loaded, "evaluate", None)
    if not callable(evaluate):
        raise ScriptError(f"{module}/__init__.py does not define evaluate().")
    return evaluate


def _failure(kind: str, exc: BaseException) -> dict:
    return {
        "ok": False,
        "kind": kind,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(),
    }


def call_evaluate(evaluate, request: dict) -> dict:
    started = time.monotonic()
    try:
        output = evaluate(
            request["annotation_file"],
            request["submission_file"],
            request["phase_codename"],
            submission_metadata=request.get("submission_metadata", {}),
        )
        return {"ok": True, "output": _jsonable(output), "evaluate_s": time.monotonic() - started}
    except MemoryError as exc:
        return _failure("memory", exc) | {"error": "MemoryError"}
    except OSError as exc:
        kind = "exception"
        if isinstance(exc, socket.gaierror) or exc.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            kind = "network"
        elif exc.errno == errno.EAGAIN and isinstance(exc, BlockingIOError):
            kind = "processes"
        return _failure(kind, exc)
    except BaseException as exc:  # everything the script raises is reported, not re-raised
        return _failure("exception", exc)


def run(request: dict) -> dict:
    try:
        evaluate = load_evaluate(request["script_root"], request["module"])
    except ScriptError as exc:
        return exc.report()
    except MemoryError as exc:
        return _failure("memory", exc) | {"error": "MemoryError"}
    return call_evaluate(evaluate, request)


def finish_report(report: dict) -> bytes:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    report["max_rss_kb"] = usage.ru_maxrss
    sys.stdout.flush()
    sys.stderr.flush()
    return json.dumps(report).encode()


def write_report(result_path: str, report: dict) -> None:
    data = finish_report(report)
    with open(result_path, "wb") as fh:
        fh.write(data)


def main() -> None:
    request_path, result_path = sys.argv[1], sys.argv[2]
    with open(request_path) as fh:
        request = json.load(fh)
    pid = os.getpid()
    outcome = run(request)
    if os.getpid() != pid:
        # A process the script forked came back through here: only the original reports.
        os._exit(0)
    write_report(result_path, outcome)


if __name__ == "__main__":
    main()
