"""kombu's Redis transport, with one synchronous client per channel instead of one per call.

kombu makes a new `redis.Redis` for every synchronous call of a channel (`conn_or_acquire`):
with late acks, two per task in the worker's main process (the message kept as unacked,
then its ack) and one per task sent. A client is a thin handle on the channel's connection
pool, but building one fills its table of ~170 response callbacks: ~0.2 ms of CPU each
time, most of what the worker's main process spends per task beyond the broker's own
commands. The pool is the channel's and stays so; a new pool (after a disconnect) gets
a new client.

evalserver.celery makes `redis://` and `rediss://` URLs name this transport (kombu's alias
table, by path: this module and redis-py are imported only when a Redis broker is used),
so URLs, logs and settings read as before."""

from __future__ import annotations

from kombu.transport import redis


class Channel(redis.Channel):
    _sync_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
