"""One installation for a drill, set up through the interfaces an operator and a participant
use (manage.py, the REST API), so the drills keep working as services change inside."""

from __future__ import annotations

import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from evalserver.testing import one_phase_config, script_bundle_zip
from tests.drills.processes import api_json, manage
from tests.services import ROOT, worker_env

PASSWORDS = {
    "admin": "pw-admin-drill-1",
    "host": "pw-host-drill-1",
    "participant": "pw-part-drill-1",
}

# Says which attempt it evaluates, in its output and its scores, so a drill can tell an
# attempt that finished from one run twice.
ATTEMPT_EVALUATE = """
import time

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    meta = kwargs["submission_metadata"]
    value = float(open(user_submission_file).read().strip() or 0)
    print(f"evaluating {meta['id']} attempt {meta['attempt']}", flush=True)
    time.sleep(0.2)
    print(f"evaluated {meta['id']} attempt {meta['attempt']}", flush=True)
    scores = {"Score": value, "Attempt": meta["attempt"]}
    return {"result": [{"main": scores}, {"hidden": scores}]}
"""


def drill_bundle(title: str = "Drill") -> bytes:
    config = one_phase_config(
        title=title,
        name="Probe",
        codename="probe",
        schema={"labels": ["Score", "Attempt"], "default_order_by": "Score"},
        phase={
            "is_submission_public": True,
            "max_submissions_per_day": 10000,
            "max_submissions_per_month": 10000,
            "max_submissions": 100000,
            "max_concurrent_submissions_allowed": 1000,
            "allowed_submission_file_types": ".txt",
        },
        splits=[
            {"name": "Main", "codename": "main", "visibility": 3},
            {"name": "Hidden", "codename": "hidden", "visibility": 1},
        ],
    )
    return script_bundle_zip(
        config,
        evaluate_source=ATTEMPT_EVALUATE,
        files={"annotations/truth.json": '{"answer": 42}'},
    )


@contextmanager
def machine_folders(name: str):
    """Media, var and script cache folders every uid may pass through (the sandbox reads
    scripts and stored files from them; pytest's own folders are 0700)."""
    import shutil

    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"drill-{name}-", dir=var))
    root.chmod(0o755)
    folders = {
        "media_root": root / "media",
        "var_dir": root / "var",
        "cache_dir": root / "cache",
    }
    for folder in folders.values():
        folder.mkdir()
        folder.chmod(0o755)
    try:
        yield root, folders
    finally:
        shutil.rmtree(root, ignore_errors=True)


def drill_env(*, database_url: str, broker_url: str, folders: dict, **extra: str) -> dict[str, str]:
    """The environment of every process of one drill installation (web, worker, beat,
    manage.py): its database, broker, queue and folders."""
    return worker_env(
        database_name="unused",
        broker_url=broker_url,
        queue=f"drill-{uuid.uuid4().hex[:8]}",
        EVALUATION_TIME_LIMIT_S="60",
        **folders,
        **{"DATABASE_URL": database_url, **extra},
    )


@dataclass
class Site:
    challenge_id: int
    tokens: dict[str, str]  # username -> API token
    team_id: int


def site_users(env: dict[str, str]) -> None:
    """The cast: an admin, a host and a participant, with passwords (Django's own API)."""
    lines = [
        "from django.contrib.auth import get_user_model",
        "User = get_user_model()",
    ]
    for name, password in PASSWORDS.items():
        staff = name == "admin"
        lines.append(
            f"u = User.objects.create_user({name!r}, {name + '@example.com'!r}, {password!r}); "
            f"u.is_staff = u.is_superuser = {staff}; u.save()"
        )
    manage(env, "shell", "-c", "\n".join(lines))


def site_prepare(env: dict[str, str], web_url: str, bundle: bytes, workdir: Path) -> Site:
    """Users, the challenge loaded and approved as an operator does, and the participant's
    team taking part over the API, as a participant does."""
    site_users(env)
    zip_path = workdir / "bundle.zip"
    zip_path.write_bytes(bundle)
    out = manage(
        env, "load_challenge", str(zip_path), "--host-team", "Hosts", "--user", "host", "--approve"
    )
    challenge_id = int(out.strip().splitlines()[-1])
    tokens = {
        name: api_json(
            "POST", f"{web_url}/api/v1/auth/token/", body={"username": name, "password": pw}
        )["token"]
        for name, pw in PASSWORDS.items()
    }
    team = api_json(
        "POST", f"{web_url}/api/v1/teams/", token=tokens["participant"], body={"name": "Drillers"}
    )
    api_json(
        "POST",
        f"{web_url}/api/v1/challenges/{challenge_id}/participate/",
        token=tokens["participant"],
        body={"team": team["id"], "accept_terms": True},
    )
    return Site(challenge_id=challenge_id, tokens=tokens, team_id=team["id"])
