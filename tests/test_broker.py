"""The Redis transport the worker and the web use (evalserver.broker): kombu's, with one
synchronous client per channel, and messages that go round as before."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection

from evalserver import broker
from tests.conftest import broker_url_for_tests, port_open, require_service


@pytest.fixture
def connection():
    require_service("redis on 127.0.0.1:6379", port_open("127.0.0.1", 6379))
    with Connection(broker_url_for_tests()) as conn:
        yield conn


def test_a_channel_builds_one_client_for_its_calls_not_one_per_call(
    connection, redis_clients_built
):
    built = redis_clients_built
    channel = connection.default_channel
    queue = connection.SimpleQueue(f"test-broker-{uuid.uuid4().hex}")
    try:
        for n in range(20):
            queue.put({"n": n})
        got = []
        for _ in range(20):
            message = queue.get(timeout=5)
            got.append(message.payload["n"])
            message.ack()  # late acks: the unacked copy is removed through the same client
        assert got == list(range(20))
        with channel.conn_or_acquire() as a, channel.conn_or_acquire() as b:
            assert a is b
        assert len(built) <= 3, f"{len(built)} clients for 40 calls"
    finally:
        queue.queue.delete()
        queue.close()


def test_a_new_pool_gets_a_new_client(connection):
    channel = connection.default_channel
    with channel.conn_or_acquire() as first:
        first.ping()
    channel._disconnect_pools()  # as kombu does when the connection is lost
    with channel.conn_or_acquire() as second:
        assert second is not first and second.connection_pool is channel.pool
        assert second.ping()


def test_redis_urls_name_it_and_read_as_before(connection):
    from evalserver.celery import app

    assert type(connection.transport) is broker.Transport
    assert connection.as_uri().startswith("redis://")
    if app.conf.broker_url.startswith("redis://"):
        assert type(app.connection_for_write().transport) is broker.Transport


def test_a_task_sent_without_declaring_its_queue_reaches_it(connection):
    """submission_enqueue publishes with declare=[]: the default exchange routes by the
    queue's name, so a queue no one has declared yet still gets the message."""
    from celery import current_app

    from challenges.services.submissions.transitions import EVALUATE_TASK

    name = f"test-broker-undeclared-{uuid.uuid4().hex}"
    with current_app.connection_for_write(connection.as_uri()) as conn:
        current_app.send_task(EVALUATE_TASK, args=[7], queue=name, declare=[], connection=conn)
        queue = conn.SimpleQueue(name)
        try:
            message = queue.get(timeout=5)
            assert message.headers["task"] == EVALUATE_TASK
            assert message.payload[0] == [7]
            message.ack()
        finally:
            queue.queue.delete()
            queue.close()


def test_only_brokers_that_route_by_queue_name_publish_without_declaring():
    from challenges.services.submissions.transitions import _routes_by_queue_name

    for url in ("redis://127.0.0.1:6379/0", "rediss://cache:6380/1", "filesystem://localhost/"):
        assert _routes_by_queue_name(url), url
    for url in ("amqp://guest@127.0.0.1//", "sqs://", "", None):
        assert not _routes_by_queue_name(url), url
