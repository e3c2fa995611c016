"""`evalserver-cli` commands for live tournaments (docs/tournaments.md): what a bot runs
when its webhook fires, and how a team uploads its model.

    evalserver-cli round 3 rounds --live live.csv          # the open round, its live data
    evalserver-cli round-submit 3 rounds predictions.csv   # for the open round (or --round N)
    evalserver-cli model 3 rounds model.pkl --current      # runs from the next round on
    evalserver-cli tournament 3 rounds [--round N]         # cumulative (or one round's) ranking
"""

from __future__ import annotations

import sys
from pathlib import Path

from evalserver.cli.api import CHUNK, Api, CliError, _Multipart, _print_table, _progress_bar

METRICS = ["corr_mean", "corr_std", "sharpe", "max_drawdown"]


def _base(args) -> str:
    return f"challenges/{args.challenge}/phases/{args.phase}/tournament/"


def cmd_round(args, api: Api) -> int:
    body = api.get(_base(args) + "rounds/current/")
    print(f"round {body['number']} (data {body['data_version']}) open until {body['closes_at']}")
    if args.live:
        response = api.session.get(body["live_features_url"], stream=True, timeout=60)
        if response.status_code >= 400:
            raise CliError(f"live features: {response.status_code}")
        with Path(args.live).open("wb") as fh:
            for chunk in response.iter_content(CHUNK):
                fh.write(chunk)
        print(f"{args.live}: live features of round {body['number']}")
    return 0


def _upload(api: Api, path: str, file: Path, fields: dict[str, str], args) -> dict:
    if not file.is_file():
        raise CliError(f"{file}: no such file", code=2)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    body = _Multipart(file, fields, _progress_bar(show))
    return api.call(
        "POST", path, data=body, headers={"Content-Type": body.content_type}, timeout=None
    ).json()


def cmd_round_submit(args, api: Api) -> int:
    number = args.round or api.get(_base(args) + "rounds/current/")["number"]
    created = _upload(api, _base(args) + f"rounds/{number}/submissions/", Path(args.file), {}, args)
    print(f"round {number}: submission {created['id']} {created['status']}")
    return 0


def cmd_model(args, api: Api) -> int:
    fields = {"current": "true" if args.current else "false"}
    created = _upload(api, _base(args) + "models/", Path(args.file), fields, args)
    print(f"model {created['id']} uploaded{' (current)' if created['is_current'] else ''}")
    return 0


def cmd_tournament(args, api: Api) -> int:
    if args.round:
        body = api.get(_base(args) + f"rounds/{args.round}/leaderboard/")
        _print_table(body["rows"], ["rank", "team", "source", "status", *METRICS])
    else:
        body = api.get(_base(args) + "leaderboard/")
        print(f"mean over rounds {', '.join(map(str, body['rounds'])) or '(none resolved)'}")
        _print_table(body["rows"], ["rank", "team", "rounds", *METRICS])
    return 0


def add_parsers(sub) -> None:
    import argparse

    c = sub.add_parser("round", help="a tournament's open round (and its live features)")
    c.add_argument("challenge", type=int)
    c.add_argument("phase")
    c.add_argument("--live", metavar="FILE", help="download the live features here")
    c.set_defaults(run=cmd_round)
    for name, run, text in (
        ("round-submit", cmd_round_submit, "predictions (CSV id,prediction) for a round"),
        ("model", cmd_model, "upload your team's model (a pickled predict)"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("challenge", type=int)
        c.add_argument("phase")
        c.add_argument("file")
        c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
        if name == "round-submit":
            c.add_argument("--round", type=int, help="default: the open round")
        else:
            c.add_argument("--current", action="store_true", help="run it even after newer uploads")
        c.set_defaults(run=run)
    c = sub.add_parser("tournament", help="a tournament's ranking (cumulative, or --round N)")
    c.add_argument("challenge", type=int)
    c.add_argument("phase")
    c.add_argument("--round", type=int)
    c.set_defaults(run=cmd_tournament)
