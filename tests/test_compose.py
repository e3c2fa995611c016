"""docker-compose.yml and the Dockerfile, proved without a Docker engine.

The compose file is parsed, filled in from .env.example (a first-time user's
`cp .env.example .env`), and the commands it gives web, worker and beat are started
natively: the container's environment (Dockerfile ENV, the .env file, the service's
`environment`) is translated to this machine (a throwaway PostgreSQL database, a spare
Redis database, folders under tmp_path, 127.0.0.1 instead of 0.0.0.0) and every command
must come up and answer.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest
import redis
import yaml

from evalserver.testing import StartedProcess, start_process

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ("web", "worker", "beat")
PG_HOST, PG_PORT, REDIS_PORT = "127.0.0.1", 5432, 6379
REDIS_DB = 13  # a database number the rest of the suite does not use
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class ComposeError(ValueError):
    """docker compose would refuse the file (e.g. a required variable is unset)."""


# --------------------------------------------------------------------- reading the files


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, args = (current + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile():
        if keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_workdir() -> str:
    return [args for keyword, args in dockerfile() if keyword == "WORKDIR"][-1]


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not NAME=value"
        values[name.strip()] = value.strip()
    return values


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $$."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise ComposeError(f"unclosed ${{ in {text!r}")
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_substitute(text[i + 2 : j - 1], variables))
            i = j
        elif match := re.match(r"\$([A-Za-z_]\w*)", text[i:]):
            out.append(variables.get(match[1], ""))
            i += match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _substitute(expr: str, variables: Mapping[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_]\w*)(?:(:?[-?])(.*))?", expr, re.DOTALL)
    if match is None:
        raise ComposeError(f"unsupported interpolation ${{{expr}}}")
    name, op, arg = match.groups()
    value = variables.get(name)
    if op is None:
        return value or ""
    missing = value is None or (op.startswith(":") and value == "")
    if not missing:
        return value
    if op.endswith("?"):
        raise ComposeError(
            f"required variable {name} is missing a value: {interpolate(arg, variables)}"
        )
    return interpolate(arg, variables)


def interpolated(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [interpolated(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, variables) for key, value in node.items()}
    return node


def compose_variables(compose: dict[str, Any]) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_]\w*)", yaml.safe_dump(compose)))


def container_env(spec: dict[str, Any]) -> dict[str, str]:
    """What a container of this (interpolated) service sees, the user's .env being .env.example."""
    env = image_env()
    for entry in spec.get("env_file", []):
        path = entry["path"] if isinstance(entry, dict) else entry
        assert path == ".env", f"env_file {path!r}: the test only knows .env"
        env.update(dotenv(ENV_EXAMPLE))
    environment = spec.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    env.update({name: "" if value is None else str(value) for name, value in environment.items()})
    return env


def command_argv(spec: dict[str, Any]) -> list[str]:
    command = spec["command"]
    # A string command is split like a shell would, not run by one (compose's rule).
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def executables(argv: list[str]) -> list[str]:
    """The programs a command runs: itself, or each step of an `sh -c` script."""
    if argv[:2] != ["sh", "-c"]:
        return [argv[0]]
    programs = []
    for step in re.split(r"&&|\|\||;", argv[2]):
        words = [w for w in shlex.split(step) if not re.fullmatch(r"[A-Za-z_]\w*=.*", w)]
        if words and words[0] == "exec":
            words = words[1:]
        if words:
            programs.append(words[0])
    return programs


def volume_targets(spec: dict[str, Any]) -> dict[str, str]:
    """Named volume -> mount point."""
    mounts = {}
    for volume in spec.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts[source] = rest.split(":")[0]
        elif volume.get("type", "volume") == "volume":
            mounts[volume["source"]] = volume["target"]
    return mounts


# --------------------------------------------------------------------- services


def missing_service(what: str) -> None:
    if os.environ.get("EVALSERVER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"missing service: {what} (EVALSERVER_REQUIRE_SERVICES=1)")
    pytest.skip(f"missing service: {what}")


@pytest.fixture
def database():
    """A throwaway PostgreSQL database, dropped at the end."""
    try:
        admin = psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", connect_timeout=3
        )
    except psycopg2.OperationalError as exc:
        missing_service(f"PostgreSQL on {PG_HOST}:{PG_PORT} ({str(exc).strip().splitlines()[0]})")
    admin.autocommit = True
    name = f"evalserver_compose_{secrets.token_hex(4)}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def broker_url():
    client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis on 127.0.0.1:{REDIS_PORT} ({exc})")
    client.flushdb()
    try:
        yield f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------- container -> native


@dataclass
class Native:
    """Maps what a container sees to this machine."""

    tmp: Path
    database_url: str
    broker_url: str

    def paths(self) -> dict[str, Path]:
        return {image_workdir(): ROOT, image_env()["EVALSERVER_VAR_DIR"]: self.tmp / "var"}

    def path(self, text: str) -> str:
        for container, native in self.paths().items():
            text = re.sub(rf"(?<![\w/.]){re.escape(container)}(?![\w.-])", str(native), text)
        return text

    def env(self, container: Mapping[str, str]) -> dict[str, str]:
        env = {name: self.path(value) for name, value in container.items()}
        if "DATABASE_URL" in env:
            assert urlsplit(container["DATABASE_URL"]).hostname == "db", container["DATABASE_URL"]
            env["DATABASE_URL"] = self.database_url
        if "CELERY_BROKER_URL" in env:
            assert urlsplit(container["CELERY_BROKER_URL"]).hostname == "redis", container[
                "CELERY_BROKER_URL"
            ]
            env["CELERY_BROKER_URL"] = self.broker_url
        # The image keeps collected static files in its own layer; here they go to tmp,
        # not into the checkout.
        env["STATIC_ROOT"] = str(self.tmp / "static")
        env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
        env["HOME"] = str(self.tmp)
        env.setdefault("LANG", "C.UTF-8")
        return env


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def web_answers(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return http_get(port, "/")[0] == 200
        except OSError:
            return False

    return check


# --------------------------------------------------------------------- the file's shape


def test_compose_has_the_five_services_and_db_and_redis_have_healthchecks(compose):
    services = compose["services"]
    assert {"db", "redis", *APP_SERVICES} <= set(services)
    assert services["db"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == depends["redis"]["condition"] == "service_healthy", (
            name
        )
        assert services[name]["image"] == services["web"]["image"], (
            "one image for web, worker and beat"
        )
    assert any(str(port).endswith(":8000") for port in services["web"]["ports"])


def test_workers_can_be_scaled(compose):
    worker = compose["services"]["worker"]
    for fixed in ("container_name", "ports", "hostname"):
        assert fixed not in worker, f"worker sets {fixed}: `--scale worker=N` would clash"


def test_web_worker_and_beat_share_the_media_volume(compose):
    media_root = image_env()["MEDIA_ROOT"]
    for name in APP_SERVICES:
        mounts = volume_targets(compose["services"][name])
        assert mounts.get("media") == media_root, (
            f"{name} does not mount the media volume at {media_root}"
        )
    assert "media" in compose["volumes"]


def test_web_worker_and_beat_store_files_in_the_minio_bucket_the_init_step_makes(compose):
    """Workers need no shared disk: every app container reaches the same private bucket on
    the MinIO service, and none starts before the bucket exists."""
    variables = dotenv(ENV_EXAMPLE)
    services = interpolated(compose, variables)["services"]
    minio, init = services["minio"], services["minio-init"]
    assert minio["image"].startswith("minio/minio:RELEASE.")
    assert init["image"].startswith("minio/mc:RELEASE.")
    assert "ports" not in minio, "MinIO must not be published: it holds the hidden data"
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert init["restart"] == "no"
    script = " ".join(init["entrypoint"])
    # $$ in the file is a literal $ for the container's shell.
    assert 'mc mb --ignore-existing "store/$BUCKET"' in script
    assert 'mc anonymous set none "store/$BUCKET"' in script
    assert init["environment"]["BUCKET"] == "evalserver"
    for name in APP_SERVICES:
        spec = services[name]
        env = container_env(spec)
        assert env["S3_BUCKET"] == init["environment"]["BUCKET"], name
        assert env["S3_ENDPOINT_URL"] == "http://minio:9000", name
        assert env["S3_ACCESS_KEY_ID"] == minio["environment"]["MINIO_ROOT_USER"], name
        assert env["S3_SECRET_ACCESS_KEY"] == variables["MINIO_ROOT_PASSWORD"], name
        assert spec["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert "objects" in compose["volumes"]
    assert volume_targets(minio) == {"objects": "/data"}
    # S3_BUCKET= (empty) goes back to the media volume, and the init step does nothing.
    local = interpolated(compose, {**variables, "S3_BUCKET": ""})["services"]
    assert container_env(local["worker"])["S3_BUCKET"] == ""
    assert local["minio-init"]["environment"]["BUCKET"] == ""
    with pytest.raises(ComposeError, match="MINIO_ROOT_PASSWORD"):
        interpolated(compose, {k: v for k, v in variables.items() if k != "MINIO_ROOT_PASSWORD"})


def test_the_settings_choose_s3_storage_from_the_compose_environment(compose, tmp_path):
    """What the app containers get from compose selects django-storages' S3 backend."""
    env = container_env(interpolated(compose, dotenv(ENV_EXAMPLE))["services"]["worker"])
    code = (
        "from django.conf import settings; import json; "
        "print(json.dumps(settings.STORAGES['default']))"
    )
    run_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "PYTEST"))},
        **{k: v for k, v in env.items() if k.startswith("S3_")},
        "DJANGO_SETTINGS_MODULE": "evalserver.settings",
        "DEBUG": "true",
        "EVALSERVER_VAR_DIR": str(tmp_path),
    }

    def default_storage() -> dict:
        done = subprocess.run(
            [str(BIN / "python"), "-c", f"import django; django.setup(); {code}"],
            cwd=ROOT,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    storage = default_storage()
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["bucket_name"] == "evalserver"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["default_acl"] == "private" and options["querystring_auth"] is True
    assert options["file_overwrite"] is False
    # Without S3_BUCKET: the local file system, as `make demo` has it.
    run_env.pop("S3_BUCKET")
    assert default_storage()["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_the_image_runs_as_a_non_root_user_and_installs_the_sandbox_tools():
    instructions = dockerfile()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image's default user must not be root"
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "util-linux" in runs and "collectstatic" in runs
    assert ("EXPOSE", "8000") in instructions


def test_env_example_documents_every_variable():
    read = set()
    for path in (ROOT / "evalserver" / "settings.py",):
        source = path.read_text()
        read |= set(re.findall(r"\benv(?:bool|int|list)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
        read |= set(re.findall(r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    assert {"SECRET_KEY", "DATABASE_URL", "EVALUATION_SANDBOX_UID"} <= read
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    read.discard("DJANGO_SETTINGS_MODULE")
    assert read - documented == set(), "read by the code but not documented in .env.example"
    with (ROOT / "docker-compose.yml").open() as fh:
        used_by_compose = compose_variables(yaml.safe_load(fh))
    assert used_by_compose - documented == set(), (
        "used by docker-compose.yml but not in .env.example"
    )


def test_env_example_is_enough_for_a_first_start(compose):
    """`cp .env.example .env && docker compose up`: no required variable left empty."""
    interpolated(compose, dotenv(ENV_EXAMPLE))
    with pytest.raises(ComposeError, match="SECRET_KEY"):
        interpolated(compose, {})


def test_check_deploy_reports_the_example_key_and_the_plain_http_settings(compose, tmp_path):
    """What the compose defaults give up, `check --deploy` says: nothing more, nothing less."""
    web = interpolated(compose, dotenv(ENV_EXAMPLE))["services"]["web"]
    # Nothing connects: the check needs no database or broker.
    native = Native(
        tmp=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        broker_url=f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}",
    )
    env = native.env(container_env(web))
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reported = set(re.findall(r"\(security\.(W\d+)\)", done.stdout + done.stderr))
    # W009: the example SECRET_KEY ("django-insecure-..."); W008, W012, W016: plain HTTP.
    assert reported == {"W008", "W009", "W012", "W016"}, done.stdout + done.stderr


# Imports what web and worker import, with every distribution that `pip install .` would
# not install hidden, as in the image. Optional imports (try: import pygments) still
# degrade quietly; a hard one fails.
RUNTIME_IMPORTS = """
import json, sys

hidden = set(json.loads(sys.argv[1]))


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, Hide())
import django
django.setup()
import celery.bin.celery, gunicorn.app.wsgiapp, kombu.transport.redis, psycopg2
import evalserver.celery, evalserver.wsgi, workers.tasks
"""


def runtime_requirements() -> set[str]:
    """Distributions `pip install .` brings: pyproject's dependencies and theirs, transitively."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(line) for line in project["dependencies"]]
    seen: set[str] = {canonicalize_name(project["name"])}
    done: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in done:
            continue
        done.add((name, frozenset(requirement.extras)))
        seen.add(name)
        for line in metadata.distribution(name).requires or []:
            needed = Requirement(line)
            extras = {"", *requirement.extras}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                pending.append(needed)
    return seen


def test_the_servers_need_nothing_beyond_the_declared_dependencies(tmp_path):
    """The image installs only pyproject's dependencies; the test venv has more (pytest's)."""
    from packaging.utils import canonicalize_name

    installed = runtime_requirements()
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if module not in sys.stdlib_module_names
        and not any(canonicalize_name(dist) in installed for dist in dists)
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "evalserver.settings",
        "SECRET_KEY": "only-to-import-the-settings",
        "EVALSERVER_VAR_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNTIME_IMPORTS, json.dumps(hidden)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------- the commands, natively


def test_the_compose_commands_start_natively_and_answer(compose, database, broker_url, tmp_path):
    services = interpolated(compose, dotenv(ENV_EXAMPLE))["services"]
    native = Native(tmp=tmp_path, database_url=database, broker_url=broker_url)
    (tmp_path / "var").mkdir()

    # The image's build step (collectstatic with its throwaway key), as the Dockerfile has it.
    build_env = native.env(image_env())
    build_steps = [
        step.strip()
        for keyword, args in dockerfile()
        if keyword == "RUN"
        for step in args.split("&&")
        if "manage.py" in step
    ]
    assert any("collectstatic" in step for step in build_steps)
    for step in build_steps:
        done = subprocess.run(
            ["sh", "-c", native.path(step)],
            cwd=ROOT,
            env=build_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"build step {step!r} failed:\n{done.stdout}\n{done.stderr}"

    port = free_port()
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name in APP_SERVICES:
        spec = services[name]
        argv = command_argv(spec)
        for program in executables(argv):
            if program == "sh":
                assert shutil.which("sh")
            else:
                assert (BIN / program).is_file(), f"{name} runs {program!r}, which is not in {BIN}"
        env = container_env(spec)
        assert env["DEBUG"] == "false", f"{name} must run with production settings"
        argv = [native.path(arg) for arg in argv]
        if name == "web":
            bind = re.search(r"--bind[ =]0\.0\.0\.0:(\d+)", " ".join(argv))
            assert bind, f"web does not bind 0.0.0.0: {argv}"
            assert any(str(p).endswith(f":{bind[1]}") for p in spec["ports"]), (
                "published port != bound port"
            )
            argv = [re.sub(r"0\.0\.0\.0:\d+", f"127.0.0.1:{port}", arg) for arg in argv]
        commands[name] = (argv, native.env(env))

    started: dict[str, StartedProcess] = {}
    try:
        for name, (argv, env) in commands.items():
            started[name] = start_process(name, argv, env, tmp_path)
        ready: dict[str, Callable[[], bool]] = {
            "web": web_answers(port),
            "worker": lambda: re.search(r"celery@\S+ ready\.", started["worker"].log()) is not None,
            "beat": lambda: "beat: Starting..." in started["beat"].log(),
        }
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = set(APP_SERVICES)
        while waiting:
            for name in sorted(waiting):
                if started[name].proc.poll() is not None:
                    pytest.fail(f"{name} exited before it was ready\n{started[name].tail()}")
                if ready[name]():
                    waiting.discard(name)
            if waiting and time.monotonic() > deadline:
                logs = "\n".join(started[name].tail() for name in sorted(waiting))
                pytest.fail(
                    f"not ready within {READY_TIMEOUT_S} s: {', '.join(sorted(waiting))}\n{logs}"
                )
            time.sleep(0.2)

        status, body = http_get(port, "/")
        assert status == 200
        stylesheet = re.search(rb'href="(/static/[^"]+\.css)"', body)
        assert stylesheet, "the home page links no stylesheet"
        status, css = http_get(port, stylesheet[1].decode())
        assert status == 200 and css, "collected static files are not served"
        # What the web container's healthcheck runs, word for word.
        health = compose["services"]["web"]["healthcheck"]["test"]
        assert health[:2] == ["CMD", "python"]
        # The container listens on 8000; the native web on `port`.
        command = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in health[2:]]
        check = subprocess.run(
            [str(BIN / "python"), *command], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stderr
        status, body = http_get(port, "/healthz")
        assert status == 200 and json.loads(body)["database"] == "ok"

        node = re.search(r"(celery@\S+) ready\.", started["worker"].log())[1]
        ping = subprocess.run(
            [
                str(BIN / "celery"),
                "-A",
                "evalserver",
                "inspect",
                "ping",
                "-d",
                node,
                "--timeout",
                "10",
            ],
            cwd=ROOT,
            env=commands["worker"][1],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr

        for process in started.values():
            process.proc.send_signal(signal.SIGTERM)
        for name, process in started.items():
            try:
                process.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"{name} did not exit within {STOP_TIMEOUT_S} s of SIGTERM\n{process.tail()}"
                )
            assert process.proc.returncode == 0, process.tail()
    finally:
        for process in started.values():
            if process.proc.poll() is None:
                os.killpg(process.proc.pid, signal.SIGKILL)
                process.proc.wait()


# --------------------------------------------------------------------- the worker's privileges

SANDBOX_RUN = """
import json, sys
from pathlib import Path
from workers.sandbox.evaluators import run_evaluation
from workers.sandbox.runner import Limits, isolation

root = Path(sys.argv[1])
common = dict(
    annotation_file=root / "annotations.txt",
    submission_file=root / "submission.txt",
    phase_codename="test",
    splits={"main": ["score"]},
)
ok = run_evaluation(script_root=root / "inspect", limits=Limits(time_limit_s=30), **common)
hang = run_evaluation(script_root=root / "hang", limits=Limits(time_limit_s=1), **common)
print(json.dumps({
    "isolation": list(isolation()),
    "ok": ok.ok,
    "problem": ok.message + ok.stderr,
    "child": ok.parsed.submission_result if ok.parsed else None,
    "hang": hang.failure,
}))
"""

INSPECT_SCRIPT = """
import os, socket

def evaluate(annotation_file, submission_file, phase_codename, **kwargs):
    open(annotation_file).read()
    seen = {"uid": os.getuid(), "pid": os.getpid(), "interfaces": sorted(n for _, n in socket.if_nameindex())}
    return {"result": [{"main": {"score": 1.0}}], "submission_result": seen}
"""

# Parent and grandchild park in the script's folder, so leftovers can be found by cwd.
HANG_SCRIPT = """
import os, time

def evaluate(*args, **kwargs):
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    if os.fork() == 0:
        os.setsid()
    time.sleep(300)
"""


def processes_under(folder: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_the_worker_capabilities_are_enough_for_the_sandbox(compose):
    """Root in the container, only the capabilities compose grants, no-new-privileges:
    evaluate() still gets no network, its own PID namespace, uid 65534, and is stopped
    (with what it started) at its time limit."""
    worker = compose["services"]["worker"]
    assert str(worker.get("user")) in ("root", "0", "0:0")
    assert worker["cap_drop"] == ["ALL"]
    assert any(
        opt.replace("=", ":").startswith("no-new-privileges:true") for opt in worker["security_opt"]
    )
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("simulating the worker container's capabilities needs root and setpriv")
    probe = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot create namespaces at all: {probe.stderr.strip()}")

    # Readable by uid 65534, unlike tmp_path.
    shared = Path(tempfile.mkdtemp(prefix="evalserver-caps-"))
    try:
        shared.chmod(0o755)
        for name, source in (("inspect", INSPECT_SCRIPT), ("hang", HANG_SCRIPT)):
            package = shared / name / "evaluation_script"
            package.mkdir(parents=True)
            (package / "__init__.py").write_text(source)
        (shared / "annotations.txt").write_text("id,label\n")
        (shared / "submission.txt").write_text("id,label\n")
        for path in [shared, *shared.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

        bounding = ",".join(["-all", *(f"+{cap.lower()}" for cap in worker["cap_add"])])
        done = subprocess.run(
            ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", "--no-new-privs", "--"]
            + [sys.executable, "-c", SANDBOX_RUN, str(shared)],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        time.sleep(0.3)
        leftovers = processes_under(shared)
        assert report["isolation"][:3] == ["unshare", "--net", "--pid"], report
        assert report["ok"], report["problem"]
        assert report["child"] == {"uid": 65534, "pid": 1, "interfaces": ["lo"]}
        assert report["hang"] == "timeout"
        assert leftovers == [], "evaluate()'s processes outlived its time limit"
    finally:
        for pid in processes_under(shared):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(shared, ignore_errors=True)
