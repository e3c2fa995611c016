"""Per-script-version Python environments for evaluation scripts with a requirements.txt.

A virtualenv that sees the worker's own packages (pandas, scikit-learn, ...) plus the
script's requirements, built once per machine and version under EVALUATION_CACHE_DIR.
Several worker processes may ask at once: a file lock lets one build while the others wait.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from django.conf import settings

from challenges.models import EvaluationScript
from challenges.services.scripts import script_set_env_status
from workers.runtimes import pip_install
from workers.scripts import cache_root

log = logging.getLogger(__name__)
EnvStatus = EvaluationScript.EnvStatus


class EnvironmentError_(RuntimeError):
    """The requirements could not be installed. The message is for hosts and participants."""


def python_for(script: EvaluationScript) -> str:
    """The interpreter that runs this script version; builds its environment if needed."""
    if not script.requirements.strip():
        return sys.executable
    return str(ensure_environment(script) / "bin" / "python")


def ensure_environment(script: EvaluationScript) -> Path:
    target = cache_root() / "envs" / f"v-{script.sha256[:24]}"
    ready = target / ".evalserver-ready"
    if ready.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if ready.exists():
            return target
        script_set_env_status(script_id=script.pk, status=EnvStatus.BUILDING)
        ok, output = _build(target, script.requirements)
        if not ok:
            shutil.rmtree(target, ignore_errors=True)
            script_set_env_status(script_id=script.pk, status=EnvStatus.FAILED, log=output)
            raise EnvironmentError_(
                f"The evaluation script's requirements.txt (version {script.version}) could not be installed; "
                "the hosts can see pip's output."
            )
        ready.touch()
        script_set_env_status(script_id=script.pk, status=EnvStatus.READY, log=output)
    return target


def _see_the_workers_packages(target: Path) -> None:
    """The worker's own packages stay importable; the script's requirements come first."""
    own = (
        target
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (own / "evalserver-worker-packages.pth").write_text("".join(f"{p}\n" for p in paths))


def _build(target: Path, requirements: str) -> tuple[bool, str]:
    shutil.rmtree(target, ignore_errors=True)
    steps: list = [
        [sys.executable, "-m", "venv", "--without-pip", str(target)],
        "link-base",
        [*pip_install(target), "-r", "/dev/stdin"],
    ]
    output = []
    for command in steps:
        if command == "link-base":
            _see_the_workers_packages(target)
            continue
        try:
            proc = subprocess.run(
                command,
                input=requirements,
                capture_output=True,
                text=True,
                timeout=settings.EVALUATION_ENV_BUILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            output.append(
                f"$ {' '.join(command)}\ntimed out after {settings.EVALUATION_ENV_BUILD_TIMEOUT_S} s"
            )
            return False, "\n".join(output)
        output.append(f"$ {' '.join(command)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            return False, "\n".join(output)
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    return True, "\n".join(output)
