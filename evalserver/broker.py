"""kombu's Redis transport, with one Redis client per channel for the commands it sends.

kombu's Redis channel builds a new `redis.Redis` for every message it publishes (and every
queue it polls or sizes): `conn_or_acquire()` without a client makes one, and a client's
construction fills a table of some 170 response callbacks. A profile of the upload found
that a sixth of its enqueue. The client is only a front to the channel's connection pool,
which kombu already keeps; the connections are taken from and returned to the pool per
command as before, so one client per channel, remade when kombu remakes its pool (after
a fork, on a reconnect), sends the same commands over the same connections.

`use_for_redis()` (evalserver.celery, before the app is made) names it in kombu's table of
transports for redis:// and rediss://: whichever way a broker URL reaches Celery (settings,
CELERY_BROKER_WRITE_URL, a test switching brokers), a Redis one takes it, and the URL reads
as it did (Celery's banner, `as_uri()`).
"""

from __future__ import annotations

from contextlib import contextmanager

import kombu.transport
from kombu.transport import redis


class Channel(redis.Channel):
    _sync_client = None

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        kept = self._sync_client
        if kept is None or kept.connection_pool is not pool:
            kept = self._sync_client = self._create_client()
        yield kept


class Transport(redis.Transport):
    Channel = Channel


def use_for_redis() -> None:
    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
