"""Which Celery queue a challenge's work goes to, and how deep each queue is.

A challenge names a queue (`Challenge.queue`, set by an admin; blank: CELERY_QUEUE); its
submissions go there and its live tournament's model runs and scorings to `<queue>-rounds`.
Workers started with `celery -A evalserver worker -Q <queue>` take only that queue's work
(and its `-rounds` twin, which every worker adds to what it consumes).
"""

from __future__ import annotations

from django.conf import settings

ROUNDS_SUFFIX = "-rounds"


def default_queue() -> str:
    from celery import current_app

    return current_app.conf.task_default_queue or settings.CELERY_TASK_DEFAULT_QUEUE


def evaluation_queue(challenge_queue: str) -> str:
    """Where a submission of a challenge with this `queue` field goes."""
    return challenge_queue or default_queue()


def rounds_queue(challenge_queue: str) -> str:
    """Where a live tournament's model runs and scorings of such a challenge go. The default
    queue's twin can be renamed with TOURNAMENT_QUEUE."""
    if challenge_queue:
        return f"{challenge_queue}{ROUNDS_SUFFIX}"
    return settings.TOURNAMENT_QUEUE or f"{default_queue()}{ROUNDS_SUFFIX}"


def queue_names() -> list[str]:
    """Every queue some challenge's work can go to: the default pair, then each named one's."""
    from challenges.models import Challenge

    named = (
        Challenge.objects.exclude(queue="").values_list("queue", flat=True).distinct().order_by()
    )
    names = [evaluation_queue(""), rounds_queue("")]
    for name in sorted(named):  # (in Python: the same order whatever the database's collation)
        names += [evaluation_queue(name), rounds_queue(name)]
    return list(dict.fromkeys(names))  # a challenge may name the default queue


def queue_depths(names: list[str]) -> dict[str, int] | None:
    """Messages waiting per queue: the length of the Redis list kombu keeps per queue (plus
    its priority lists, `<name>\\x06\\x16<n>`); with the embedded filesystem broker, its
    message files per queue. None for another broker, or one that is down."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return _filesystem_depths(names)
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
                for priority in (3, 6, 9):
                    pipe.llen(f"{name}\x06\x16{priority}")
            counts = pipe.execute()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {name: sum(counts[i * 4 : i * 4 + 4]) for i, name in enumerate(names)}


def _filesystem_depths(names: list[str]) -> dict[str, int] | None:
    """kombu's filesystem transport keeps one `<stamp>_<uuid>.<queue>.msg` file a message."""
    import os

    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    if not folder:
        return None
    try:
        files = os.listdir(folder)
    except OSError:
        return None
    counts = dict.fromkeys(names, 0)
    for name in files:
        queue = name.partition(".")[2].removesuffix(".msg")
        if queue in counts and name.endswith(".msg"):
            counts[queue] += 1
    return counts
