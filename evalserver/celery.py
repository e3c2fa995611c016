"""Celery application. Tasks live in `workers.tasks`; broker settings come from Django settings."""

import os
import sys
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import worker_init
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalserver.settings")
# Redis: kombu's transport with one client per channel, not one per call (evalserver.broker).
# (Sentinel keeps its own.)
for _scheme in ("redis", "rediss"):
    TRANSPORT_ALIASES[_scheme] = "evalserver.broker:Transport"

app = Celery("evalserver")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])

# Celery warns at length about a worker running as root, which reads like breakage to
# someone trying the demo. Here root is on purpose, and said once, plainly, below.
warnings.filterwarnings(
    "ignore", message="You're running the worker with superuser", category=SecurityWarning
)


@worker_init.connect
def _say_why_root(**_kwargs) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    from django.utils.translation import gettext as _

    print(
        _(
            "This worker runs as root on purpose: it gives every evaluation its own uid, "
            "namespaces and /tmp, which only root can set up. It accepts JSON tasks only "
            "(never pickle), so a message cannot run code as root."
        ),
        file=sys.stderr,
        flush=True,
    )
