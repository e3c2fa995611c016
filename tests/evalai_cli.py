"""The unchanged `evalai` CLI (PyPI's evalai 1.3.18) in a virtualenv of its own.

It pins click 7, which breaks Celery, so it never goes into the project's environment:
`make evalai-cli` (run by `make test`) or, failing that, the first test that needs it
builds `.venv-evalai` from PyPI. It keeps its host and token under ~/.evalai, so every run
gets a HOME of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-evalai"
STAMP = VENV / ".installed-1.3.18"
OFFLINE = Path(__file__).resolve().parent / "evalai_offline"
# evalai 1.3.18 goes in without its own pins (they do not resolve on current Python);
# these, with their dependencies, are what its code works with (`make evalai-cli` calls
# ensure_evalai_venv).
EVALAI = "evalai==1.3.18"
PACKAGES = [
    "click==7.1.2",
    "validators==0.12.6",
    "termcolor==1.1.0",
    "beautifultable==0.7.0",
    "requests",
    "tqdm",
    "boto3",
    "lxml",
    "python-dateutil",
    "docker",
    "beautifulsoup4",
]


def ensure_evalai_venv() -> Path:
    """The `evalai` executable, building its virtualenv once if needed."""
    executable = VENV / "bin" / "evalai"
    if STAMP.exists() and executable.exists():
        return executable
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    pip = [str(VENV / "bin" / "pip"), "install", "--quiet"]
    subprocess.run([*pip, *PACKAGES], check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", EVALAI], check=True, timeout=300)
    STAMP.touch()
    return executable


@dataclass
class EvalAICLI:
    executable: Path
    home: Path

    def __call__(self, *args: str, input: str = "", check: bool = True) -> str:
        env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Plain text: no colour codes in what the tests read.
            "ANSI_COLORS_DISABLED": "1",
            "TERM": "dumb",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            # Answers the CLI's version check (pypi.org) locally: tests stay on 127.0.0.1.
            "PYTHONPATH": str(OFFLINE),
        }
        done = subprocess.run(
            [str(self.executable), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.home,
            timeout=120,
        )
        output = done.stdout + done.stderr
        if os.environ.get("EVALAI_CLI_ECHO"):  # see what the CLI printed: pytest -s
            print(f"$ evalai {' '.join(args)}\n{output}")
        if check:
            assert done.returncode == 0, (
                f"evalai {' '.join(args)} exited {done.returncode}:\n{output}"
            )
        return output
