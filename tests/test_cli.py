"""`evalserver-cli` against a live server and a real worker: what a participant's script does."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from challenges.models import Submission
from evalserver import cli
from starters.build import sample_submissions
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "cli.json"
    monkeypatch.setenv("EVALSERVER_CONFIG", str(path))
    monkeypatch.setenv("EVALSERVER_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("EVALSERVER_URL", "EVALSERVER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return path


def run(capsys, *argv, stdin: str = "") -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = cli.main(list(argv))
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def test_a_participant_logs_in_downloads_submits_with_progress_and_waits(
    pipeline, live_server, users, host_teams, starter_zips, starter_dir, config, capsys, tmp_path
):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)

    code, out, _ = run(
        capsys, "login", live_server.url, "charlie", "--password-stdin", stdin="pw-charlie-123\n"
    )
    assert code == 0, out
    assert json.loads(config.read_text())["url"] == live_server.url
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    code, out, _ = run(capsys, "challenges")
    assert code == 0 and challenge.title in out

    code, out, _ = run(capsys, "data", str(challenge.pk), "dev", "--out", str(tmp_path / "data"))
    assert code == 0 and "sha256 ok" in out
    assert (tmp_path / "data" / "train.csv").stat().st_size > 0

    code, out, _ = run(capsys, "quota", str(challenge.pk), "dev")
    assert code == 0 and re.search(r"remaining: \d+", out)

    code, out, _ = run(capsys, "leaderboard", str(challenge.pk), "dev", "dev_split")
    assert (code, out) == (0, "no entries yet\n")
    # A split that is not one: the 404 says which are.
    code, _, err = run(capsys, "leaderboard", str(challenge.pk), "dev", "public")
    assert code == 1 and "404" in err
    assert "Phase 'dev' has no leaderboard split 'public'; its splits are: dev_split." in err

    sample = sample_submissions(starter_dir)["tabular_classification"]["dev"]
    code, out, err = run(
        capsys, "submit", str(challenge.pk), "dev", str(sample), "--progress", "--wait"
    )
    assert code == 0, (out, err)
    assert "100.0%" in err  # the progress bar reached the end
    submission_id = int(re.search(r"submission (\d+): ", out).group(1))
    assert Submission.objects.get(pk=submission_id).status == Submission.Status.FINISHED
    assert re.search(r"dev_split: \{\"Accuracy\": [0-9.]+", out), out

    code, out, _ = run(capsys, "status", str(submission_id))
    assert code == 0 and "finished" in out
    code, out, _ = run(capsys, "submissions", str(challenge.pk), "dev")
    assert code == 0 and str(submission_id) in out
    code, out, _ = run(capsys, "leaderboard", str(challenge.pk), "dev", "dev_split")
    assert code == 0, out
    header, first = out.splitlines()[:2]
    assert header.split() == ["rank", "team", "Accuracy", "Macro-F1", "baseline"]
    assert first.split()[:3] == ["1", f"team-charlie-{challenge.pk}", "0.6800"]  # precision 4


def test_refusals_print_the_servers_reason_and_exit_non_zero(
    pipeline, live_server, users, host_teams, starter_zips, config, capsys, tmp_path
):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    code, _, err = run(capsys, "login", live_server.url, "bob", "--password-stdin", stdin="bad\n")
    assert code == 1 and "400" in err and not config.exists()

    run(capsys, "login", live_server.url, "bob", "--password-stdin", stdin="pw-bob-123\n")
    # Bob's team does not take part: the server says so, the CLI passes it on.
    wrong = tmp_path / "p.csv"
    wrong.write_text("id,label\n1,0\n")
    code, _, err = run(capsys, "submit", str(challenge.pk), "dev", str(wrong))
    assert code == 1 and "403" in err
    code, _, err = run(capsys, "submit", str(challenge.pk), "dev", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "status", "999999")
    assert code == 1 and "404" in err


def test_without_a_login_it_says_how_to_get_one(config, capsys):
    code, _, err = run(capsys, "challenges")
    assert code == 2 and "evalserver-cli login" in err


def test_the_console_script_is_installed_with_the_project():
    script = Path(sys.executable).with_name("evalserver-cli")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "submit" in done.stdout
