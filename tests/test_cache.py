"""The Redis cache CACHE_URL=redis://... names (evalserver.cache): Django's, with one client
per connection pool, and values that go round as before."""

from __future__ import annotations

import uuid

import pytest

from evalserver.cache import RedisCache
from evalserver.env import cache_from_url
from tests.conftest import broker_url_for_tests, port_open, require_service


@pytest.fixture
def cache():
    require_service("redis on 127.0.0.1:6379", port_open("127.0.0.1", 6379))
    params = cache_from_url(broker_url_for_tests(), default_folder=None)
    # Its own key prefix in the shared test Redis; clear() would empty the whole db.
    return RedisCache(params["LOCATION"], {"KEY_PREFIX": f"test-cache-{uuid.uuid4().hex}"})


def test_redis_urls_name_it():
    for url in ("redis://127.0.0.1:6379/3", "rediss://cache.example:6380/0"):
        assert cache_from_url(url, default_folder=None)["BACKEND"] == "evalserver.cache.RedisCache"


def test_it_builds_one_client_for_its_calls_not_one_per_call(cache, redis_clients_built):
    built = redis_clients_built
    for n in range(20):
        cache.set(f"k{n}", [n, 0.5, "x"], timeout=60)
    assert [cache.get(f"k{n}") for n in range(20)] == [[n, 0.5, "x"] for n in range(20)]
    assert cache.get("missing", "default") == "default"
    assert cache.add("k-count", 1, timeout=60)
    assert cache.incr("k-count") == 2
    cache.delete_many([f"k{n}" for n in range(20)] + ["k-count"])
    assert cache.get("k0") is None
    assert len(built) == 1, f"{len(built)} clients for some 45 calls"


def test_a_new_pool_gets_a_new_client(cache):
    first = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is first
    cache._cache._pools.clear()  # a pool made again
    second = cache._cache.get_client()
    assert second is not first and second.connection_pool is not first.connection_pool
    assert second.ping()
