"""Notifications: events (events.py) fanned out once (fanout.py) into in-site rows and
outbox messages, sent by Celery (outbox.py) over email or chat (channels.py), as each
user's preferences say (preferences.py)."""
