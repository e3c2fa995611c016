"""Tests of issue 11 ("safe to open to strangers") reuse the page tests' small world:
alice hosts, bob hosts elsewhere, charlie and dave are in rival teams, erin is an outsider,
admin is staff (see tests/frontend/conftest.py)."""

from tests.frontend.conftest import client_as, world  # noqa: F401  (fixtures)
