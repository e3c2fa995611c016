"""The page tests' world (tests/frontend/conftest.py): alice hosts the challenge, bob hosts
elsewhere, charlie and dave are in rival teams of it, erin is an outsider, admin is staff."""

from __future__ import annotations

import pytest

from challenges.models import NotificationEvent
from challenges.notifications.fanout import event_fan_out
from tests.frontend.conftest import client_as, world  # noqa: F401  (fixtures)


@pytest.fixture
def fan_out():
    """What the worker does with every event not yet fanned out (the tests' transaction
    never commits, so no task was sent); returns how many events it took."""

    def run() -> int:
        pending = list(NotificationEvent.objects.filter(fanned_out_at__isnull=True).order_by("pk"))
        for event in pending:
            event_fan_out(event_id=event.pk)
        return len(pending)

    return run
