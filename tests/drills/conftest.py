"""Fixtures of the operator drills: each runs an installation of its own (PostgreSQL
cluster, Redis, folders), never the suite's shared servers' data."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import require_service
from tests.drills.processes import PostgresCluster, manage, postgres_cluster_available
from tests.services import RedisProcess

# A database migrated once per session; installations start as copies of it.
MIGRATED = "migrated"


def _cluster() -> PostgresCluster:
    require_service(
        "PostgreSQL server binaries (initdb, pg_ctl) and runuser", postgres_cluster_available()
    )
    return PostgresCluster().init().start()


@pytest.fixture
def cluster():
    """A cluster of the test's own, which it may stop and start."""
    cluster = _cluster()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def shared_cluster():
    """A cluster for drills that never stop it, with the current schema in MIGRATED:
    `createdb -T migrated NAME` instead of a migrate per installation."""
    cluster = _cluster()
    env = {**os.environ, "DATABASE_URL": cluster.createdb(MIGRATED)}
    manage(env, "migrate", "--noinput", "-v0")
    yield cluster
    cluster.destroy()


@pytest.fixture
def redis_server(tmp_path):
    require_service("redis-server (the Redis binary)", shutil.which("redis-server") is not None)
    redis = RedisProcess(workdir=tmp_path / "redis").start()
    yield redis
    redis.kill()
