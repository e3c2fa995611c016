"""Django's Redis cache, with one Redis client per connection pool for the commands it sends.

Django's RedisCacheClient builds a new `redis.Redis` for every get and set
(`get_client()` wraps the pool in a new client), and a client's construction fills a
table of some 170 response callbacks: a profile of the upload found most of the submit
throttle's CPU there (it asks the cache twice per request). The client is only a front to
the pool, which Django already keeps; connections are taken from and returned to the pool
per command as before, so one client per pool sends the same commands over the same
connections. (kombu's Redis channel had the same habit: evalserver.broker.)

`evalserver.env.cache_from_url` names it for CACHE_URL=redis://... and rediss://.
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, tuple[object, object]] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        kept = self._clients.get(id(pool))
        if kept is None or kept[0] is not pool:
            kept = self._clients[id(pool)] = (pool, self._client(connection_pool=pool))
        return kept[1]


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
