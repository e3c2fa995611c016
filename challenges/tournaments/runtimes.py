"""The Python versions a model may run under (DESIGN section 16). cloudpickle carries
neither the Python version nor the libraries a model was pickled with, so the participant
names the version at upload and the model runs under it; the operator offers the versions
(settings.PREDICT_PYTHONS, "3.11=/path/to/python3.11,3.12=/path/to/python3.12")."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from challenges.tournaments.core import TournamentRefused

OWN_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def runtimes_offered() -> dict[str, str]:
    """Python version ("3.12") -> interpreter, oldest first. Without the setting: the
    worker's own interpreter."""
    found: dict[str, str] = {}
    for item in str(settings.PREDICT_PYTHONS or "").split(","):
        version, sep, path = item.partition("=")
        if sep and version.strip() and path.strip():
            found[version.strip()] = path.strip()
    if not found:
        found[OWN_VERSION] = sys.executable
    return dict(sorted(found.items(), key=lambda item: _version_key(item[0])))


def runtime_default() -> str:
    """The newest version offered: what a model runs under when its uploader says nothing."""
    return list(runtimes_offered())[-1]


def runtime_choose(version: str | None) -> str:
    """The version a model uploaded with `version` runs under; refused when not offered."""
    offered = runtimes_offered()
    wanted = (version or "").strip()
    if not wanted:
        return runtime_default()
    if wanted not in offered:
        # "3.12.1" names the minor version the pickle needs.
        short = ".".join(wanted.split(".")[:2])
        if short in offered:
            return short
        raise TournamentRefused(
            _("Python %(version)s is not offered here; choose one of: %(offered)s.")
            % {"version": wanted, "offered": ", ".join(offered)},
            field="python_version",
        )
    return wanted


_DESCRIBE = """
import json, platform
from importlib import metadata
packages = {}
for name in %r:
    try:
        packages[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        packages[name] = None
print(json.dumps({"python": platform.python_version(), "packages": packages}))
"""


# Where a worker builds each runtime's environment (it shares EVALUATION_CACHE_DIR with
# the evaluation environments), and the packages every runtime gets: the worker's versions.
def pinned_packages() -> dict[str, str | None]:
    """The worker's versions of the model packages: every runtime gets the same."""
    found: dict[str, str | None] = {}
    for name in settings.PREDICT_RUNTIME_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def runtime_env_folder(version: str, interpreter: str) -> Path:
    pins = ",".join(f"{k}={v}" for k, v in sorted(pinned_packages().items()))
    key = hashlib.sha256(f"{interpreter}\n{pins}".encode()).hexdigest()[:16]
    return Path(settings.EVALUATION_CACHE_DIR) / "envs" / f"runtime-{version}-{key}"


def built_python(version: str, interpreter: str) -> str | None:
    target = runtime_env_folder(version, interpreter)
    if (target / ".evalserver-ready").exists():
        return str(target / "bin" / "python")
    return None


def runtimes_describe() -> list[dict]:
    """Each runtime's Python version and package versions, for the upload page, the API and
    `evalserver-cli runtime`. A runtime whose environment is not built yet shows the
    packages it will get (at the worker's versions)."""
    return [_describe(version, path) for version, path in runtimes_offered().items()]


@functools.lru_cache(maxsize=16)
def _describe(version: str, interpreter: str) -> dict:
    python = built_python(version, interpreter) or interpreter
    described = {"version": version, "interpreter": interpreter, "python": "", "packages": {}}
    if version == OWN_VERSION and interpreter == sys.executable:
        python = sys.executable
    try:
        proc = subprocess.run(
            [python, "-c", _DESCRIBE % (tuple(settings.PREDICT_RUNTIME_PACKAGES),)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        described.update(json.loads(proc.stdout))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        described["python"] = _("unavailable")
    if python == interpreter and interpreter != sys.executable:
        # Not built yet: the environment will get the worker's versions.
        described["packages"] = pinned_packages()
        described["environment"] = "not built yet"
    return described
