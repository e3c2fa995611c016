"""The Redis broker's transport (evalserver.broker): one client per channel for what it
sends, the messages as kombu's own transport sends them."""

from __future__ import annotations

import uuid

import kombu

from evalserver.broker import Channel
from tests.conftest import broker_url_for_tests, port_open, require_service


def test_a_redis_broker_publishes_through_one_client_per_channel_and_loses_no_message():
    require_service("redis on 127.0.0.1:6379", port_open("127.0.0.1", 6379))
    import evalserver.celery  # noqa: F401  (names the transport for redis://)

    name = f"evalserver-test-broker-{uuid.uuid4().hex[:8]}"
    with kombu.Connection(broker_url_for_tests()) as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        queue = kombu.Queue(name, routing_key=name)
        producer = connection.Producer()
        clients = set()
        try:
            for n in range(3):
                producer.publish({"n": n}, routing_key=name, declare=[queue])
                clients.add(id(channel._sync_client))
            assert len(clients) == 1
            # kombu remakes its pool (after a fork, a reconnect): the client goes with it.
            kept = channel._sync_client
            channel._disconnect_pools()
            producer.publish({"n": 3}, routing_key=name, declare=[queue])
            assert channel._sync_client is not kept
            assert channel._sync_client.connection_pool is channel.pool
            got = []
            for _ in range(4):
                message = queue(channel).get(no_ack=True)
                got.append(message.payload["n"])
            assert sorted(got) == [0, 1, 2, 3]
        finally:
            queue(channel).delete()
