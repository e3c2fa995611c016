"""Shared fixtures. The cast, one meaning per name in every test (`users` makes the first
four; the worlds that need them add dave and erin):

- alice: host, member of "Alice Labs", which owns the challenges under test
- bob: host of "Bob Corp"; should have no access to Alice's challenges
- charlie: a participant with no host team (the submitting team, where there is one)
- dave: a participant in another team of the same challenge
- erin: signed in, in no team and no host team: an outsider
- admin: staff superuser who reviews challenges

ROLES names who plays each of the seven roles of DESIGN section 9 in access tests.

Real-process tests (a Celery worker, gunicorn, Chromium, Compose, the bench) are marked
`slow` here, by what they use: `make test-fast` leaves them out.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from challenges.services.teams import host_team_create

REQUIRE_SERVICES = os.environ.get("EVALSERVER_REQUIRE_SERVICES") == "1"

# The seven roles of DESIGN section 9, in the authorisation table's column order, and who
# plays them (as in the cast above).
ROLES = {
    "anonymous": None,
    "outsider": "erin",
    "other_team": "dave",
    "participant": "charlie",
    "other_host": "bob",
    "host": "alice",
    "admin": "admin",
}

# What makes a test slow: a real worker, a real web server, a browser, Compose, the bench.
# (Modules that start workers of their own, such as test_faults.py, say so themselves.)
SLOW_FIXTURES = {"live_worker", "web_server", "chromium"}
SLOW_FILES = {"test_compose.py", "test_bench_smoke.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & SLOW_FIXTURES or item.path.name in SLOW_FILES or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


def require_service(name: str, available: bool) -> None:
    """Skip locally when a service is missing; fail in CI, where it must be there."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"missing service: {name} (EVALSERVER_REQUIRE_SERVICES=1)")
    pytest.skip(f"missing service: {name}")


@pytest.fixture
def redis_clients_built(monkeypatch) -> list:
    """Every redis.Redis client built during the test (evalserver.broker and
    evalserver.cache keep one per connection pool instead of one per call)."""
    import redis

    built = []
    real_init = redis.Redis.__init__

    def counting_init(self, *args, **kwargs):
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting_init)
    return built


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(autouse=True)
def _test_settings(settings):
    """Fast password hashing; static files without collectstatic's manifest; no throttle
    counts carried over from an earlier test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Throttle counters live in the cache: each test starts with none spent.
    from django.core.cache import cache

    cache.clear()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    """Every test writes into its own MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def starter_dir(tmp_path_factory) -> Path:
    from starters.build import build_starters

    out = tmp_path_factory.mktemp("starters")
    build_starters(out)
    return out


@pytest.fixture(scope="session")
def starter_zips(starter_dir) -> dict[str, Path]:
    return {p.stem: p for p in sorted(starter_dir.glob("*.zip"))}


@pytest.fixture
def users(django_user_model):
    make = django_user_model.objects.create_user
    cast = {
        "alice": make("alice", "alice@example.org", "pw-alice-123"),
        "bob": make("bob", "bob@example.org", "pw-bob-123"),
        "charlie": make("charlie", "charlie@example.org", "pw-charlie-123"),
        "admin": django_user_model.objects.create_superuser(
            "admin", "admin@example.org", "pw-admin-123"
        ),
    }
    return cast


@pytest.fixture
def host_teams(users):
    return {
        "alice": host_team_create(name="Alice Labs", creator=users["alice"]),
        "bob": host_team_create(name="Bob Corp", creator=users["bob"]),
    }


@pytest.fixture
def api(users):
    """api("alice") is an APIClient authenticated by alice's token; api(None) is anonymous."""

    def client(name: str | None) -> APIClient:
        c = APIClient()
        if name:
            token, _ = Token.objects.get_or_create(user=users[name])
            c.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return c

    return client


# ---------------------------------------------------------------- real services


def postgres_in_use() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def broker_url_for_tests() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def pipeline_env(tmp_path_factory, django_db_setup, django_db_blocker):
    """PostgreSQL and Redis for tests whose behaviour depends on them."""
    from django.db import connection

    require_service("postgresql (set DATABASE_URL=postgres://...)", postgres_in_use())
    require_service("redis on 127.0.0.1:6379", port_open("127.0.0.1", 6379))
    from evalserver.celery import app
    from tests.services import build_probe_wheel, new_queue

    root = tmp_path_factory.mktemp("pipeline")
    # Storage as production has it: in folders every user may pass through (pytest's are
    # 0700), so only the stored files' own modes keep the sandbox uids out. The checkout's
    # var/ may lie under /tmp (a clone there): children see their inputs bound back anyway.
    var = Path(__file__).resolve().parent.parent / "var"
    var.mkdir(exist_ok=True)
    media = Path(tempfile.mkdtemp(prefix="test-media-", dir=var))
    media.chmod(0o755)
    env = {
        "database_name": connection.settings_dict["NAME"],
        "broker_url": broker_url_for_tests(),
        "media_root": media / "media",
        "var_dir": root / "var",
        "queue": new_queue(),
    }
    env["media_root"].mkdir()
    # The sandbox user reads unpacked scripts: their cache sits outside pytest's 0700 folders.
    cache = Path(tempfile.mkdtemp(prefix="evalserver-test-cache-"))
    cache.chmod(0o755)
    env["cache_dir"] = cache
    # Requirements environments install from here, never from an index.
    wheelhouse = Path(tempfile.mkdtemp(prefix="evalserver-test-wheels-"))
    build_probe_wheel(wheelhouse)
    env["pip_args"] = f"--no-index --find-links {wheelhouse}"
    app.conf.broker_url = env["broker_url"]
    app.conf.task_default_queue = env["queue"]
    yield env
    shutil.rmtree(media, ignore_errors=True)


@pytest.fixture(scope="session")
def smtp_port() -> int:
    """The port the session's worker mails to (tests/mail.py's SmtpServer listens there
    when a test wants the mail; otherwise the outbox retries, as against a server down)."""
    from tests.services import spare_port

    return spare_port()


@pytest.fixture(scope="session")
def live_worker(pipeline_env, tmp_path_factory, smtp_port):
    """A real `celery worker` process (two pool processes) serving this session's queue."""
    import uuid

    from tests.services import WorkerProcess, worker_env

    log_dir = tmp_path_factory.mktemp("worker-logs")
    mail = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "5",
        "OUTBOX_RETRY_BASE_S": "0.5",
        "OUTBOX_MAX_ATTEMPTS": "4",
    }
    worker = WorkerProcess(
        env=worker_env(**pipeline_env, EVALUATION_TIME_LIMIT_S="60", **mail),
        log_path=log_dir / "worker.log",
        node=f"test-{uuid.uuid4().hex[:6]}@%h",
    ).start()
    yield worker
    worker.stop()


@pytest.fixture
def pipeline(live_worker, pipeline_env, transactional_db, settings):
    """Tests run as the web process does: same database, storage and broker as the worker."""
    settings.MEDIA_ROOT = pipeline_env["media_root"]
    yield live_worker
    _wait_for_fan_outs()


def _wait_for_fan_outs(timeout: float = 15) -> None:
    """A test ends when its submissions do; the worker then fans out their notifications
    (one transaction over several tables). The database flush after the test must not
    truncate those tables under it (PostgreSQL would call it a deadlock and fail the
    flush): wait until every event is fanned out, which is when its transaction committed."""
    import time

    from challenges.models import NotificationEvent

    deadline = time.monotonic() + timeout
    while NotificationEvent.objects.filter(fanned_out_at__isnull=True).exists():
        if time.monotonic() > deadline:
            break  # a test that stopped its worker: nothing will take them
        time.sleep(0.05)


def files_under(root: Path) -> set[Path]:
    return {p for p in Path(root).rglob("*") if p.is_file()} if Path(root).exists() else set()


@pytest.fixture
def media_files(settings):
    return lambda: files_under(settings.MEDIA_ROOT)
