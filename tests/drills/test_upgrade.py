"""Drill: a database made by the previous release, with rows in every table, migrates
forward with the current tree and nothing is lost.

The previous release is checked out from this repository's history (pinned by commit id,
so no tag has to exist in a fresh clone) into a temporary folder; its own `manage.py
migrate` makes the schema and its own services fill every table (release_seed.py). Then
the current tree migrates the same database. Every table keeps its rows, the API
tokens issued by the old release still work, and the leaderboards and submissions are
served as the old release served them (the fields it had, with the same values: a
later release may add fields).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys

import pytest

from tests.drills.installation import drill_env, machine_folders
from tests.drills.processes import Gunicorn, http, manage, query
from tests.services import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.services]

# v0.19, the last release before this drill: bump both when a release is cut (and check
# release_seed.py still runs against it).
PREVIOUS_RELEASE = "12c9621cfa9fdda5474306fa1163626ea0c5695e"
PREVIOUS_RELEASE_NAME = "v0.19"
# Tables a later migration may grow by itself: one row per model or permission.
GROWS_WITH_THE_SCHEMA = {"django_content_type", "auth_permission"}
# Tables a migration has renamed or folded into another: {old table: new table}. Empty
# while no migration has done so; a migration that does adds its line here.
MOVED: dict[str, str] = {}


def checkout_of(commit: str, into) -> None:
    """The tree of `commit` in `into`, from this repository's history (a fresh clone has
    it; a shallow one may not)."""
    git = ["git", "-C", str(ROOT)]
    found = subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        pytest.fail(
            f"the previous release {PREVIOUS_RELEASE_NAME} (commit {commit}) is not in this "
            f"repository's history at {ROOT}: clone it in full (not --depth), or "
            "`git fetch --unshallow`"
        )
    into.mkdir()
    archive = subprocess.Popen([*git, "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    assert archive.wait() == 0


def model_tables(env: dict[str, str], cwd) -> list[str]:
    """Every model's table (many-to-many ones included), as that tree's code lists them."""
    out = manage(
        env,
        "shell",
        "-c",
        "from django.apps import apps; import json; print(json.dumps(sorted({m._meta.db_table "
        "for m in apps.get_models(include_auto_created=True) if m._meta.managed and not m._meta.proxy})))",
        cwd=cwd,
    )
    return json.loads(out.strip().splitlines()[-1])


def row_counts(url: str, tables: list[str]) -> dict[str, int]:
    return {table: query(url, f'SELECT count(*) FROM "{table}"')[0][0] for table in tables}  # noqa: S608


def test_a_database_of_the_previous_release_migrates_forward_with_nothing_lost(
    shared_cluster, redis_server, tmp_path
):
    old_tree = tmp_path / "previous-release"
    checkout_of(PREVIOUS_RELEASE, old_tree)
    url = shared_cluster.createdb("upgrade")
    with contextlib.ExitStack() as stack:
        _root, folders = stack.enter_context(machine_folders("upgrade"))
        env = drill_env(database_url=url, broker_url=redis_server.url, folders=folders)
        old = {**env, "PYTHONPATH": str(old_tree)}

        # The previous release makes its schema and fills it, with its own code.
        manage(old, "migrate", "--noinput", "-v0", cwd=old_tree)
        shutil.copy(ROOT / "tests" / "drills" / "release_seed.py", old_tree / "release_seed.py")
        seeded = subprocess.run(
            [sys.executable, "release_seed.py"],
            cwd=old_tree,
            env=old,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        made = json.loads(seeded.stdout.strip().splitlines()[-1])
        tables = model_tables(old, old_tree)
        before = row_counts(url, tables)
        empty = [table for table, n in before.items() if n == 0]
        assert empty == [], f"release_seed.py left these tables empty: {empty}"
        in_database = {
            r[0] for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert in_database - set(tables) == {"django_migrations"}
        old_web = Gunicorn(old, tmp_path / "gunicorn-old.log", cwd=old_tree)
        old_web.start()
        served_before = _served(old_web.url, made)
        old_web.stop()

        # The current tree migrates the same database.
        applied = query(url, "SELECT count(*) FROM django_migrations")[0][0]
        manage(env, "migrate", "--noinput", "-v0")
        applied = query(url, "SELECT count(*) FROM django_migrations")[0][0] - applied
        assert "No planned migration operations" in manage(env, "migrate", "--plan")
        after = row_counts(url, [MOVED.get(t, t) for t in tables])
        for table, count in before.items():
            now = after[MOVED.get(table, table)]
            if table in GROWS_WITH_THE_SCHEMA:
                assert now >= count, table
            else:
                assert now == count, (table, count, now)

        web = Gunicorn(env, tmp_path / "gunicorn-new.log").start()
        stack.callback(web.stop)
        served_after = _served(web.url, made)

    print(
        f"\ndrill figures: {len(tables)} tables, {sum(before.values())} rows before and "
        f"{sum(after.values())} after; {applied} migrations applied "
        f"on top of {PREVIOUS_RELEASE_NAME}; {len(served_before)} answers compared"
    )
    for key, old_answer in served_before.items():
        assert _kept(old_answer, served_after[key]), (key, old_answer, served_after[key])


def _served(url: str, made: dict) -> dict[str, object]:
    """The answers to compare: leaderboards, every submission as its submitter sees it
    (with the token the old release issued), the tournament's round. Keyed "who path"."""
    cid, tokens = made["challenge_id"], made["tokens"]
    reads = [
        ("anonymous", f"/api/v1/challenges/{cid}/phases/probe/splits/main/leaderboard/"),
        ("host", f"/api/v1/challenges/{cid}/phases/probe/splits/hidden/leaderboard/"),
        ("host", f"/api/v1/challenges/{cid}/phases/probe/submissions/"),
        ("ada", f"/api/v1/submissions/{made['waiting_id']}/"),
        ("grace", "/api/v1/auth/tokens/"),
        (
            "ada",
            f"/api/v1/challenges/{made['tournament_id']}/phases/rounds/tournament/rounds/current/",
        ),
    ]
    for sid in made["submission_ids"]:
        reads.append(("host", f"/api/v1/submissions/{sid}/"))
    seen = {}
    for who, path in reads:
        status, _headers, body = http("GET", url + path, token=tokens.get(who))
        assert status == 200, (who, path, status, body[:500])
        # Links name the server that answered; the two releases run on different ports.
        seen[f"{who} {path}"] = json.loads(body.replace(url.encode(), b"http://server"))
    return seen


def _kept(old, new) -> bool:
    """`new` has everything `old` had, with the same values (dicts may gain keys)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and _kept(v, new[k]) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(old) == len(new) and all(map(_kept, old, new))
    return old == new
