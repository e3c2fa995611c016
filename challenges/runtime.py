"""The runtime participants' models run in (code phases): Python and its packages.

Workers and the web app share one image, so the web process describes its own
environment. Pure: no ORM.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib import metadata


@cache
def code_runtime() -> dict:
    """{"python": "3.11.7", "packages": [{"name": ..., "version": ...}, ...]} sorted by name."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name and name.lower() not in packages:
            packages[name.lower()] = {"name": name, "version": dist.version}
    return {
        "python": platform.python_version(),
        "packages": [packages[key] for key in sorted(packages)],
    }
