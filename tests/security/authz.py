"""The authorisation table: for every operation of the served OpenAPI schema and each of
seven roles, the status a request with the world's real ids (and an empty body) gets.

The table lives in authorisation_table.txt, one line per operation, reviewed by a person:
it is the platform's access policy in one place. When an operation is missing, the test
fails and prints the row the code answers today: read it before adding it, since a
generated expectation is only as good as the code it was read from.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROLES

TABLE = Path(__file__).with_name("authorisation_table.txt")
# The seven roles in the table's column order, and who plays them: tests/conftest.py.


def read_table() -> dict[str, dict[str, int]]:
    expected = {}
    for raw in TABLE.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        method, path, *codes = line.split()
        if len(codes) != len(ROLES):
            raise ValueError(f"{TABLE.name}: {raw!r} needs {len(ROLES)} statuses")
        expected[f"{method} {path}"] = dict(zip(ROLES, map(int, codes), strict=True))
    return expected


def format_row(key: str, statuses: dict[str, int]) -> str:
    method, path = key.split(" ", 1)
    return f"{method:<7}{path:<88}" + "".join(f"{statuses[r]:>7}" for r in ROLES)


SHORT = {
    "anonymous": "anon",
    "outsider": "outsdr",
    "other_team": "oteam",
    "participant": "partic",
    "other_host": "ohost",
    "host": "host",
    "admin": "admin",
}


def header() -> str:
    return "# " + f"{'method path':<93}" + "".join(f"{SHORT[r]:>7}" for r in ROLES)
