"""Names strangers type (team names, usernames, method names, challenge titles) must
read the same to everyone: bidirectional control characters reorder the text around
them, so "Team‮gnp.exe" shows as "Teamexe.png" on a leaderboard. They are refused, with
a message that says which character and where. One check, used by every entry point.
Pure text handling, no ORM.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _

# The explicit embeddings, overrides and isolates, the implicit marks, and the Arabic
# letter mark.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)


class UnsafeText(ValueError):
    """A name holds a character it may not; the message says which and where."""


def bidi_problem(value: str, *, what: str) -> str | None:
    """Why `value` may not be used as `what` ("Team name"), or None."""
    for position, char in enumerate(value or "", 1):
        if char in BIDI_CONTROLS:
            return _(
                "%(what)s contains U+%(code)04X %(name)s at position %(position)s; "
                "remove it (it reorders the text around it)."
            ) % {
                "what": what,
                "code": ord(char),
                "name": unicodedata.name(char, "BIDIRECTIONAL CONTROL"),
                "position": position,
            }
    return None


def refuse_bidi(value: str, *, what: str) -> str:
    """`value`, or UnsafeText when it holds a bidirectional control character."""
    problem = bidi_problem(value, what=what)
    if problem:
        raise UnsafeText(problem)
    return value


@deconstructible
class NoBidiControls:
    """The same check as a Django / DRF field validator."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, value) -> None:
        problem = bidi_problem(str(value), what=str(self.what))
        if problem:
            raise ValidationError(problem, code="bidi_control")

    def __eq__(self, other) -> bool:
        return isinstance(other, NoBidiControls) and other.what == self.what
