"""`evalserver-cli`: the participant's (and bot's) command line, over the REST API only.

    evalserver-cli login https://comp.example.org alice          # asks for the password
    evalserver-cli login https://comp.example.org --token-stdin  # SSO: a token from /accounts/tokens/
    evalserver-cli challenges
    evalserver-cli data 3 dev --out data/                       # public files; resumes partial ones
    evalserver-cli quota 3 dev
    evalserver-cli submit 3 dev predictions.csv --wait          # resumable; progress, then the result
    evalserver-cli status 41 --wait
    evalserver-cli leaderboard 3 dev dev_split                  # phase, then split codename
    evalserver-cli round 3 rounds --live live.csv               # tournaments: see tournament.py

No Django here: a participant installs the project (or copies this folder) and needs only
`requests`. The server and token come from --url/--token, EVALSERVER_URL/EVALSERVER_TOKEN,
or the file `login` writes (EVALSERVER_CONFIG, default ~/.config/evalserver/cli.json).
Exit status: 0 done, 1 the server refused (its message is printed), 2 usage, 3 the
submission ended failed or cancelled, 4 --wait timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from evalserver.cli import tournament
from evalserver.cli.api import Api, CliError, config_path
from evalserver.cli.commands import (
    cmd_challenge,
    cmd_challenges,
    cmd_data,
    cmd_leaderboard,
    cmd_login,
    cmd_quota,
    cmd_status,
    cmd_submissions,
    cmd_submit,
)

# ---------------------------------------------------------------- parsing


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evalserver-cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="the server (default: EVALSERVER_URL or the saved login)")
    p.add_argument("--token", help="an API token (default: EVALSERVER_TOKEN or the saved login)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("login", help="get an API token and save it")
    c.add_argument("server")
    c.add_argument("username", nargs="?")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    c.add_argument(
        "--token-stdin",
        action="store_true",
        help="read an API token (from the site's tokens page) from stdin instead: for "
        "accounts that sign in with the organisation's identity provider",
    )
    c.set_defaults(run=cmd_login, needs_api=False)

    c = sub.add_parser("challenges", help="the challenges you can see")
    c.set_defaults(run=cmd_challenges)
    c = sub.add_parser("challenge", help="one challenge and its phases")
    c.add_argument("challenge", type=int)
    c.set_defaults(run=cmd_challenge)

    for name, run, text in (
        ("data", cmd_data, "download the phase's public data (sha256 checked)"),
        ("quota", cmd_quota, "what your team may still submit"),
        ("submissions", cmd_submissions, "your team's submissions to a phase"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("challenge", type=int)
        c.add_argument("phase")
        if name == "data":
            c.add_argument("--out", default=".", help="folder (default: here)")
        c.set_defaults(run=run)

    c = sub.add_parser("submit", help="upload a file to a phase")
    c.add_argument("challenge", type=int)
    c.add_argument("phase")
    c.add_argument("file")
    c.add_argument("--method-name")
    c.add_argument("--description")
    c.add_argument("--meta", help='meta attributes as JSON, e.g. {"Model": "gbm"}')
    c.add_argument("--public", action=argparse.BooleanOptionalAction, default=None)
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    c.add_argument("--wait", action="store_true", help="wait for the result")
    c.add_argument("--timeout", type=float, default=3600)
    c.add_argument(
        "--part-mib",
        type=float,
        default=32,
        help="bytes per request of the resumable upload, in MiB (default 32)",
    )
    c.set_defaults(run=cmd_submit)

    c = sub.add_parser("status", help="a submission's status and results")
    c.add_argument("submission", type=int)
    c.add_argument("--wait", action="store_true")
    c.add_argument("--timeout", type=float, default=3600)
    c.set_defaults(run=cmd_status)

    c = sub.add_parser("leaderboard", help="a phase split's leaderboard")
    c.add_argument("challenge", type=int)
    c.add_argument("phase")
    c.add_argument("split")
    c.add_argument("--order-by")
    c.set_defaults(run=cmd_leaderboard)

    tournament.add_parsers(sub)
    return p


def _api(args) -> Api:
    saved: dict[str, str] = {}
    path = config_path()
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            raise CliError(f"{path} is not valid JSON; run `evalserver-cli login` again") from None
    url = args.url or os.environ.get("EVALSERVER_URL") or saved.get("url")
    token = args.token or os.environ.get("EVALSERVER_TOKEN") or saved.get("token")
    if not url:
        raise CliError("no server: run `evalserver-cli login URL USERNAME` or pass --url", 2)
    return Api(url, token)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        api = _api(args) if getattr(args, "needs_api", True) else None
        return args.run(args, api)
    except CliError as exc:
        print(f"evalserver-cli: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
