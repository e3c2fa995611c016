"""End to end: real gunicorn, a real Celery worker, PostgreSQL, Redis and headless
Chromium (Debian's, never a downloaded one) driven by Playwright.

Failed tests leave a full-page screenshot of every open page in test-artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalserver.testing import start_process
from tests.conftest import require_service
from tests.services import spare_port, worker_env

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Passwords of the cast, hashed with Django's default hasher so gunicorn can check them
# (the test process itself uses a fast hasher gunicorn does not know).
PASSWORDS = {
    "alice": "pw-alice-123",
    "bob": "pw-bob-123",
    "charlie": "pw-charlie-123",
    "admin": "pw-admin-123",
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_web_server(pipeline_env, root: Path, port: int | None = None, **extra: str) -> Server:
    """gunicorn serving the app on 127.0.0.1 (a free port unless given), with production
    settings plus `extra`, on the same database, storage and broker queue as the test's
    worker. Callers stop it with `stop_web_server`."""
    env = worker_env(
        **pipeline_env,
        **{"DEBUG": "false", **extra},
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATIC_ROOT=str(root / "static"),
        METRICS_TOKEN="e2e-metrics-token",
    )
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stderr
    return start_gunicorn(env, root, port=port)


def start_gunicorn(
    env: dict[str, str], log_dir: Path, *, port: int | None = None, workers: int = 2
) -> Server:
    """gunicorn serving the app on 127.0.0.1 with `env`, as `make demo` runs it (several
    worker processes), once it answers the login page; its log is log_dir/gunicorn.log."""
    bin_dir = Path(sys.executable).parent
    port = port or spare_port()
    started = start_process(
        "gunicorn",
        [
            str(bin_dir / "gunicorn"),
            "evalserver.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--timeout",
            "120",
            "--access-logfile",
            "-",
            # Not the control socket in the home folder that every gunicorn shares.
            "--no-control-socket",
        ],
        env,
        log_dir,
    )
    proc = started.proc
    server = Server(f"http://127.0.0.1:{port}", proc, started.log_path)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited at start:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + "/accounts/login/", timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            pytest.fail(f"gunicorn not answering in 60 s:\n{server.log()[-3000:]}")
        time.sleep(0.2)
    return server


def stop_web_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()


def serve(pipeline_env, root: Path, **settings: str):
    """Start gunicorn with `settings` (environment variables), yield its Server, stop it."""
    server = start_web_server(pipeline_env, root, **settings)
    yield server
    stop_web_server(server)


@pytest.fixture(scope="session")
def web_server(pipeline_env, tmp_path_factory):
    """gunicorn serving the app on a free 127.0.0.1 port, with production settings, on
    the same database, storage and broker queue as the test's worker."""
    yield from serve(pipeline_env, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session")
def chromium():
    require_service(f"chromium at {CHROMIUM} (apt-get install chromium)", CHROMIUM.exists())
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django refuses ORM calls
    # there unless told that this (test) code is really synchronous.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def save_screenshots(pages, name: str) -> list[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    saved = []
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
    for index, page in enumerate(pages):
        path = ARTIFACTS / f"{safe}-{index}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            print(f"no screenshot of page {index}: {exc}", file=sys.stderr)
            continue
        saved.append(path)
    return saved


def admin_approves(e2e, challenge) -> None:
    """The admin logs in to the Django admin in a page of its own and approves `challenge`
    with the list's action, as a reviewer does after a host's upload."""
    from playwright.sync_api import expect  # imported where used, as `chromium` does

    admin = e2e.page()
    admin.goto("/admin/login/")
    admin.get_by_label("Username").fill("admin")
    admin.get_by_label("Password").fill(PASSWORDS["admin"])
    admin.get_by_role("button", name="Log in").click()
    admin.goto("/admin/challenges/challenge/")
    admin.locator(f"input[name=_selected_action][value='{challenge.pk}']").check()
    admin.locator("select[name=action]").select_option("approve")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text("Approved 1 challenge.")


@pytest.fixture
def e2e(pipeline, web_server, chromium, users, settings, request):
    """A fresh browser per user: `e2e.page("alice")` is a page of alice's own context."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    for name, password in PASSWORDS.items():
        users[name].set_password(password)
        users[name].save()

    contexts = []

    class Session:
        url = web_server.url
        server = web_server
        worker = pipeline

        @staticmethod
        def page(viewport: dict | None = None, **options):
            """`options` go to the browser context: locale="ja-JP", timezone_id=..."""
            context = chromium.new_context(
                base_url=web_server.url,
                viewport=viewport or {"width": 1200, "height": 900},
                **options,
            )
            context.set_default_timeout(20_000)
            contexts.append(context)
            return context.new_page()

        @staticmethod
        def login(page, username: str, password: str | None = None):
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password or PASSWORDS[username])
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(lambda url: "/accounts/login/" not in url)

    yield Session
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed:
        pages = [p for c in contexts for p in c.pages]
        saved = save_screenshots(pages, request.node.name)
        print(f"screenshots: {[str(p) for p in saved]}", file=sys.stderr)
        print(f"--- gunicorn log ---\n{web_server.log()[-4000:]}", file=sys.stderr)
    for context in contexts:
        context.close()
