"""Runs inside the limited child process: import the evaluation script, call evaluate(),
report what it returned (or why it failed) as JSON. Standard library only: the warm parent
(workers/sandbox/warm_parent.py) runs with an empty environment and loads this file by path.
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


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def call_evaluate(evaluate, request: dict) -> dict:
    started, cpu_before = time.monotonic(), _cpu_s()
    try:
        output = evaluate(
            request["annotation_file"],
            request["submission_file"],
            request["phase_codename"],
            submission_metadata=request.get("submission_metadata", {}),
        )
        return {
            "ok": True,
            "output": _jsonable(output),
            "evaluate_s": time.monotonic() - started,
            # The call's own CPU: what the child spent on confinement and its fork is the
            # rest of cpu_s (the benchmark counts that as the platform's).
            "evaluate_cpu_s": _cpu_s() - cpu_before,
        }
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
        elif exc.errno == errno.EFBIG:  # RLIMIT_FSIZE (Python ignores SIGXFSZ)
            kind = "file_size"
        return _failure(kind, exc)
    except (ImportError, LookupError) as exc:
        # A lazy import (LookupError: an encoding's codec module) that the sandbox uid
        # cannot reach is the platform's fault, not the script's: name the folder.
        blocked = unreachable_folder(sys.path)
        if blocked is not None:
            folder, needed_for = blocked
            return _failure("sandbox", exc) | {
                "error": f"{type(exc).__name__}: {exc} (uid {os.getuid()} cannot reach "
                f"{folder}, which holds {needed_for})",
                "folder": folder,
            }
        return _failure("exception", exc)
    except BaseException as exc:  # everything the script raises is reported, not re-raised
        return _failure("exception", exc)


def unreachable_folder(paths) -> tuple[str, str] | None:
    """(the first folder this process cannot enter, the import folder behind it), for the
    first of `paths` that cannot be listed; None when every one can."""
    for path in paths:
        if not path or not os.path.isabs(path) or path.endswith(".zip"):
            continue
        try:
            os.listdir(path)
            continue
        except FileNotFoundError:
            continue
        except OSError:
            pass
        folder = "/"
        for name in path.strip("/").split("/"):
            child = os.path.join(folder, name)
            try:
                os.listdir(child)
            except FileNotFoundError:
                break
            except OSError:
                return (child if os.access(folder, os.X_OK) else folder), path
            folder = child
        return path, path
    return None


def finish_report(report: dict) -> bytes:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    report["max_rss_kb"] = usage.ru_maxrss
    sys.stdout.flush()
    sys.stderr.flush()
    return json.dumps(report).encode()
