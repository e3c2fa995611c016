"""Issue 22 against a running demo: gunicorn with two workers on the embedded setup
`make demo` uses (SQLite, `manage.py migrate` and `demo_setup`, DEBUG on). Deep JSON,
ids past a bigint (which SQLite's driver answered with OverflowError, a 500) and the
scrubber's table of path shapes are sent over HTTP; nothing answers 500, every refusal
says what was wrong, and no host path reaches the participant.

Traffic goes only to the gunicorn this test starts on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import pytest
import requests

from tests.e2e.conftest import ROOT, start_gunicorn, stop_web_server
from tests.security.test_failure_text import SHAPES

pytestmark = [pytest.mark.e2e]

HUGE = "99999999999999999999"
DEEP = "[" * 1000 + "]" * 1000

# After demo_setup: the participant takes part in the first challenge and has one failed
# submission per message (as a worker would have stored it); prints what the test needs.
SETUP = """
import json, os
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from challenges.models import Challenge, Submission
from tests.workers.pipeline_helpers import participate

user = get_user_model().objects.get(username="participant")
challenge = Challenge.objects.order_by("pk").first()
team = participate(user, challenge).team
phase = challenge.phases.order_by("pk").first()
ids = [
    Submission.objects.create(
        phase=phase, team=team, created_by=user, input_file="submissions/x.csv",
        file_name="x.csv", input_sha256="0" * 64, input_size=1,
        status=Submission.Status.FAILED, failure_kind="exception", failure_message=message,
    ).pk
    for message in json.load(open(os.environ["HOSTILE_MESSAGES"]))
]
token = Token.objects.get_or_create(user=user)[0].key
print(json.dumps({"token": token, "challenge": challenge.pk, "phase": phase.codename, "ids": ids}))
"""


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    # Folder names with spaces, as a host's may have: they must not reach participants.
    media, cache = root / "my media", root / "worker cache"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST")
        and k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "MEDIA_ROOT")
    }
    env.update(
        DEBUG="true",
        SECRET_KEY="e2e-demo-key-0123456789abcdefghijklmnopqrstuvwxyz",
        EVALSERVER_VAR_DIR=str(root),
        MEDIA_ROOT=str(media),
        EVALUATION_CACHE_DIR=str(cache),
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="evalserver.settings",
    )
    host_paths = [
        f"cannot open {media}/challenges/1/annotations/test labels.csv",
        f"script at {cache}/scripts/c1-v1/evaluation_script/main.py failed",
        f"{ROOT}/challenges/bundle.py: no",
        f"import from {sys.prefix}/lib/python3.11/site-packages/numpy/core.py broke",
    ]
    messages = root / "messages.json"
    messages.write_text(json.dumps([m for m, _, _ in SHAPES] + host_paths))
    env["HOSTILE_MESSAGES"] = str(messages)
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "demo_setup")
    data = json.loads(_manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    server = start_gunicorn(env, root, workers=2)
    data.update(
        url=server.url,
        server=server,
        folders=[str(media), str(cache), str(ROOT), sys.prefix],
        host_paths=host_paths,
    )
    yield data
    stop_web_server(server)


def test_the_demo_answers_hostile_input_without_a_500(demo):
    url, auth = demo["url"], {"Authorization": f"Token {demo['token']}"}
    challenge = demo["challenge"]
    session = requests.Session()
    session.trust_env = False  # no proxy: 127.0.0.1 only
    sent, errors = 0, []

    def call(method, path, **kwargs):
        nonlocal sent
        response = session.request(method, url + path, timeout=60, **kwargs)
        sent += 1
        if response.status_code >= 500:
            errors.append((method, path, response.status_code))
        return response

    # Deep JSON: a body without signing in, a body with a token, a multipart JSON field.
    response = call(
        "POST", "/api/v1/auth/token/", data=DEEP, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "nested deeper than 64 levels in the request body" in response.json()["detail"]
    response = call(
        "POST", "/api/v1/teams/", data=DEEP, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]
    response = call(
        "POST",
        f"/api/v1/challenges/{challenge}/phases/{demo['phase']}/submissions/",
        headers=auth,
        files={"file": ("p.csv", b"id,label\n1,1")},
        data={"meta_attributes": DEEP},
    )
    assert response.status_code == 400
    assert "nested deeper than 64 levels in meta_attributes" in response.text

    # Huge ids: tus metadata, paths (API, pages, EvalAI's routes), query, body.
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {
            "kind": "submission",
            "challenge": HUGE,
            "phase": "dev",
            "sha256": "0" * 64,
        }.items()
    )
    response = call(
        "POST",
        "/api/v1/uploads/",
        headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": meta},
    )
    assert response.status_code == 400 and "at most 18 digits" in response.json()["detail"]
    for path in (
        f"/api/v1/challenges/{HUGE}/",
        f"/api/v1/submissions/{HUGE}/",
        f"/challenges/{HUGE}/",
        f"/submissions/{HUGE}/",
        f"/api/challenges/challenge/{HUGE}",
        f"/api/jobs/submission/{HUGE}",
    ):
        assert call("GET", path, headers=auth).status_code == 404, path
    response = call(
        "POST",
        f"/api/v1/challenges/{challenge}/participate/",
        headers=auth,
        json={"team": int(HUGE), "accept_terms": True},
    )
    assert response.status_code == 400

    # The scrubber's table: what the participant reads of each failure.
    expected = [e for _, _, e in SHAPES]
    for index, pk in enumerate(demo["ids"]):
        for path, key in (
            (f"/api/v1/submissions/{pk}/", "failure_message"),
            (f"/api/jobs/submission/{pk}", "failure_message"),
        ):
            response = call("GET", path, headers=auth)
            assert response.status_code == 200, (path, response.text[:300])
            text = response.json()[key] or ""
            if index < len(SHAPES):
                for word in SHAPES[index][1]:
                    assert word not in text, (path, SHAPES[index][0], text)
                assert text == expected[index]
            else:
                for folder in demo["folders"]:
                    assert folder not in text, (path, text)
                assert "my media" not in text and "worker cache" not in text, text
                assert "<path>" in text, text
    # Every operation of the served schema with every path parameter huge, and deep JSON
    # (last: a route without parameters, such as the token's rotation, may change state).
    schema = call("GET", "/api/v1/schema/", params={"format": "json"}).json()
    for path, item in schema["paths"].items():
        filled = "".join(
            HUGE if part.startswith("{") else part for part in re.split(r"(\{\w+\})", path)
        )
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            call(method.upper(), filled, headers=auth, params={"offset": HUGE, "limit": HUGE})
            if method in ("post", "put", "patch"):
                call(
                    method.upper(),
                    filled,
                    headers={**auth, "Content-Type": "application/json"},
                    data=DEEP,
                )

    print(f"demo: {sent} requests, {len(errors)} server errors")
    assert not errors, errors
    log = demo["server"].log()
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]
