"""The interpreter a model runs under (DESIGN section 16): the worker's own for its own
Python version, else a cached environment of the operator's interpreter for that version
(settings.PREDICT_PYTHONS) with the worker's model packages at the worker's versions,
built once per machine like a script's requirements environment (workers.environments).
The sandbox binds each interpreter's folders into the child as it does the worker's own
(workers.sandbox.confine.import_roots runs inside the warm parent of that interpreter)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from challenges.tournaments.runtimes import built_python, pinned_packages, runtime_env_folder


class RuntimeUnavailable(RuntimeError):
    """The runtime could not be prepared: the platform's fault, not the model's."""


def runtime_python(version: str) -> str:
    """The interpreter for models pickled under Python `version`; builds its environment on
    first use. Raises RuntimeUnavailable."""
    from challenges.tournaments.runtimes import OWN_VERSION, runtime_default, runtimes_offered

    offered = runtimes_offered()
    version = version or runtime_default()
    interpreter = offered.get(version)
    if interpreter is None:
        raise RuntimeUnavailable(f"Python {version} is no longer offered on this worker.")
    if version == OWN_VERSION and Path(interpreter).resolve() == Path(sys.executable).resolve():
        return sys.executable
    if version == OWN_VERSION and interpreter == sys.executable:
        return sys.executable
    ready = built_python(version, interpreter)
    if ready:
        return ready
    target = runtime_env_folder(version, interpreter)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker process may be building it
        ready = built_python(version, interpreter)
        if ready:
            return ready
        ok, output = _build(target, interpreter)
        if not ok:
            shutil.rmtree(target, ignore_errors=True)
            raise RuntimeUnavailable(
                f"The Python {version} runtime could not be prepared:\n{output[-4000:]}"
            )
        (target / ".evalserver-ready").touch()
    return str(target / "bin" / "python")


def pip_install(target: Path) -> list[str]:
    """The worker's pip installing into the environment at `target` (its packages to add).
    Shared with workers.environments so both build their environments the same way."""
    return [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(target / "bin" / "python"),
        "install",
        "--disable-pip-version-check",
        "--no-input",
        # Wheels only: building an sdist would run the host's setup code in the
        # worker, outside the sandbox. Installing a wheel runs nothing.
        "--only-binary=:all:",
        *settings.EVALUATION_PIP_ARGS,
    ]


def _build(target: Path, interpreter: str) -> tuple[bool, str]:
    shutil.rmtree(target, ignore_errors=True)
    pins = pinned_packages()
    pinned = [f"{name}=={v}" if v else name for name, v in pins.items()]
    install = pip_install(target)
    steps = [
        [interpreter, "-m", "venv", "--without-pip", str(target)],
        [*install, *pinned],
    ]
    output: list[str] = []
    for number, command in enumerate(steps):
        ok = _run(command, output)
        if not ok and number == 1:
            # The worker's version may have no wheel for an older or newer Python: the
            # newest that has one, and the runtime page says which it got.
            ok = _run([*install, *pins], output)
        if not ok:
            return False, "\n".join(output)
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    return True, "\n".join(output)


def _run(command: list[str], output: list[str]) -> bool:
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=settings.EVALUATION_ENV_BUILD_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        output.append(f"$ {' '.join(command)}\n{exc}")
        return False
    output.append(f"$ {' '.join(command)}\n{proc.stdout}{proc.stderr}")
    return proc.returncode == 0
