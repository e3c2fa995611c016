"""The one typed set of limits for a sandboxed child (evaluate() or a participant's predict()).

Standard library only: the warm parent (workers/sandbox/warm_parent.py, run by path with an empty
environment) loads this file by path too, so both sides of the socket build the same
dataclass from the same keys instead of passing dicts with renamed fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    time_limit_s: float = 600.0  # wall clock, kept by the warm parent
    memory_mb: int = 4096  # RLIMIT_AS on top of what the warm parent had mapped at fork
    cpu_time_s: float | None = None  # RLIMIT_CPU; default: the wall-clock limit
    max_processes: int = 64  # RLIMIT_NPROC of the sandbox uid
    log_max_bytes: int = 1024**2  # stdout and stderr, each
    cpus: int | None = None  # pin to this many cores (code submissions: 1); None: no pinning
    max_file_mb: int | None = None  # RLIMIT_FSIZE, the largest file the child may write

    @property
    def cpu_limit_s(self) -> int:
        """The CPU seconds after which RLIMIT_CPU stops the child."""
        return int(self.cpu_time_s or self.time_limit_s)

    @classmethod
    def for_phase(cls, resources: dict[str, Any] | None, **defaults: Any) -> Limits:
        """The operator's defaults (`defaults`), overridden by a phase's `resources`."""
        base = cls(**defaults)
        resources = resources or {}
        return dataclasses.replace(
            base,
            time_limit_s=float(resources.get("time_limit_s", base.time_limit_s)),
            memory_mb=int(resources.get("memory_mb", base.memory_mb)),
        )

    def to_message(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Limits:
        unknown = data.keys() - cls.__dataclass_fields__
        if unknown:
            # Both ends ship in one checkout: a key one side does not know is a bug, not
            # something to drop quietly (a limit that is silently not applied).
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        return cls(**data)


def django_setting(name: str, default: Any) -> Any:
    """A sandbox setting from evalserver/settings.py (the one place that reads the
    environment) when Django is set up; `default` where it is not (`python -m
    workers.predict` on a participant's machine, which has no Django)."""
    import os

    try:
        from django.conf import settings
    except ImportError:
        return default
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return default
    return getattr(settings, name, default)
