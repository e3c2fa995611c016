"""The project as an operator meets it: settings, migrations, deploy checks, layout rules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent


def run_manage(
    *args: str, env: dict[str, str] | None = None, tmp_path: Path | None = None
) -> subprocess.CompletedProcess:
    test_defaults = (
        "DJANGO_",
        "SECRET_KEY",
        "DEBUG",
        "SECURE_",
        "SESSION_COOKIE_",
        "CSRF_COOKIE_",
        "ALLOWED_HOSTS",
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(test_defaults)}
    if tmp_path is not None:
        base["EVALSERVER_VAR_DIR"] = str(tmp_path)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_refuses_to_start_with_debug_off_and_no_secret_key(tmp_path):
    proc = run_manage("check", env={"DEBUG": "false"}, tmp_path=tmp_path)
    assert proc.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in proc.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        "DEBUG": "false",
        "SECRET_KEY": "x" * 60 + "-production-like-key-for-the-test",
        "ALLOWED_HOSTS": "evalserver.example.org",
    }
    proc = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_migrations_are_complete(tmp_path):
    proc = run_manage(
        "makemigrations", "--check", "--dry-run", env={"DEBUG": "true"}, tmp_path=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_bad_boolean_setting_says_which_variable(monkeypatch):
    from evalserver import settings as s

    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG='maybe' is not a boolean"):
        s.envbool("SOME_FLAG", False)
    monkeypatch.setenv("SOME_NUMBER", "12x")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER='12x' is not an integer"):
        s.envint("SOME_NUMBER", 1)


def test_secrets_can_come_from_a_file(monkeypatch, tmp_path):
    from evalserver import settings as s

    secret = tmp_path / "secret"
    secret.write_text("from-a-docker-secret\n")
    monkeypatch.setenv("MY_SECRET_FILE", str(secret))
    assert s.env("MY_SECRET") == "from-a-docker-secret"


def test_every_setting_read_from_the_environment_is_documented_in_env_example():
    example = (ROOT / ".env.example").read_text()
    tree = ast.parse((ROOT / "evalserver" / "settings.py").read_text())
    names = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "") in {"env", "envbool", "envint", "envlist"}
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and node.args[0].value.isupper()
    }
    assert names, "settings.py reads no variables?"
    missing = sorted(n for n in names if n not in example)
    assert not missing, f".env.example does not document {missing}"


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_dependency_arrows_point_one_way():
    assert not {"workers", "frontend"} & _imports("challenges")
    assert "frontend" not in _imports("workers")


def test_the_bundle_loader_is_pure():
    imported: set[str] = set()
    for path in (ROOT / "challenges").glob("bundle*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                imported |= {n.split(".")[0] for n in names}
    assert "django" not in imported


def _modules(package: str) -> dict[str, ast.Module]:
    return {
        str(path.relative_to(ROOT)): ast.parse(path.read_text())
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def test_pages_import_nothing_from_the_api():
    offending = sorted(
        f"{name}: {node.module}"
        for name, tree in _modules("frontend").items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("challenges.api")
    )
    assert not offending, "pages ask the access modules, not the API: " + ", ".join(offending)


def test_status_columns_change_only_through_the_state_machine():
    """Every `.update(status=...)` of the house is in challenges/services/state_machine.py,
    except the webhook deliveries' (a retry log, not a state machine)."""
    writers = sorted(
        f"{name}:{node.lineno}"
        for package in ("challenges", "workers", "frontend")
        for name, tree in _modules(package).items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"update", "bulk_update"}
        and any(k.arg == "status" for k in node.keywords)
        and name not in {"challenges/services/state_machine.py", "challenges/services/webhooks.py"}
    )
    assert not writers, f"status written outside the transition table: {writers}"


def test_access_is_refused_only_in_access_modules():
    raisers = sorted(
        name
        for package in ("challenges", "frontend", "workers")
        for name, tree in _modules(package).items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and getattr(node.exc.func, "id", None) == "AccessDenied"
        and not name.endswith("access.py")
    )
    assert not raisers, f"AccessDenied raised outside an access module: {sorted(set(raisers))}"


def test_the_apps_read_settings_not_the_environment():
    """settings.py is the one place that reads the environment. Exempt: workers/sandbox/limits.py
    asks whether Django is configured at all (the warm parent and `python -m
    workers.predict` run without it, and `python -m workers.predict --python VERSION` reads
    PREDICT_PYTHONS there), the warm parent's child (forked.py) sets its own HOME and TMPDIR,
    and a CodaLab bundle's runtime (codalab_runtime.py), which runs inside that child as the
    generated evaluation package, hands the child's own environment to the program it
    starts."""
    readers = sorted(
        f"{name}:{node.lineno}"
        for package in ("challenges", "workers", "frontend")
        for name, tree in _modules(package).items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"environ", "getenv"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and name
        not in {
            "workers/sandbox/limits.py",
            "workers/sandbox/forked.py",
            "workers/predict.py",
            "challenges/bundle/codalab_runtime.py",
        }
    )
    assert not readers, f"read the environment outside settings.py: {readers}"
