"""`evalserver-cli` commands for live tournaments (docs/tournaments.md): what a bot runs
when its webhook fires, and how a team uploads its model.

    evalserver-cli round 3 rounds --live live.csv          # the open round, its live data
    evalserver-cli round-submit 3 rounds predictions.csv   # for the open round (or --round N)
    evalserver-cli model 3 rounds model.pkl --python 3.12  # runs now (open round, validation)
    evalserver-cli models 3 rounds                         # your models: status and cause
    evalserver-cli diagnostics 12 [--csv d.csv] [--upload validation_predictions.csv]
    evalserver-cli runtime                                 # Python and package versions offered
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
    if args.python:
        fields["python_version"] = args.python
    created = _upload(api, _base(args) + "models/", Path(args.file), fields, args)
    print(
        f"model {created['id']} uploaded{' (current)' if created['is_current'] else ''}, "
        f"Python {created['python_version']}: {created['status']} "
        f"(evalserver-cli diagnostics {created['id']})"
    )
    return 0


def _status(model: dict) -> str:
    cause = model.get("failure_cause")
    return f"{model['status']}: {cause.replace('_', ' ')}" if cause else model["status"]


def cmd_models(args, api: Api) -> int:
    rows = [
        {**m, "status": _status(m), "current": "yes" if m["is_current"] else ""}
        for m in api.get(_base(args) + "models/")
    ]
    _print_table(rows, ["id", "file_name", "python_version", "status", "current", "uploaded_at"])
    for m in rows:
        if m.get("failure_message"):
            print(f"model {m['id']}: {m['failure_message']}")
    return 0


def cmd_diagnostics(args, api: Api) -> int:
    path = f"tournament-models/{args.model}/diagnostics/"
    if args.upload:
        body = _upload(api, path, Path(args.upload), {}, args)
        print(f"model {body['model']}: {body['status']}")
        return 0
    body = api.get(path)
    print(f"model {body['model']} (Python {body['python_version']}): {_status(body)}")
    if body.get("failure_message"):
        print(body["failure_message"])
    for key, value in body["summary"].items():
        print(f"{key}: {value}")
    if args.csv:
        response = api.call("GET", f"tournament-models/{args.model}/diagnostics.csv")
        Path(args.csv).write_bytes(response.content)
        print(f"{args.csv}: per-era diagnostics")
    else:
        _print_table(
            body["per_era"], ["era", "rows", "corr", "cumulative_corr", "feature_exposure"]
        )
    return 0 if body["status"] not in ("failed", "error") else 1


def cmd_runtime(args, api: Api) -> int:
    body = api.get("tournament-runtimes/")
    for runtime in body["runtimes"]:
        default = " (default)" if runtime["version"] == body["default"] else ""
        print(f"Python {runtime['python'] or runtime['version']}{default}")
        for name, version in runtime["packages"].items():
            print(f"  {name} {version or '-'}")
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
            c.add_argument("--python", help="the Python version it was pickled with (3.12)")
        c.set_defaults(run=run)
    c = sub.add_parser("models", help="your team's models: status, cause, Python version")
    c.add_argument("challenge", type=int)
    c.add_argument("phase")
    c.set_defaults(run=cmd_models)
    c = sub.add_parser("diagnostics", help="a model's diagnostics on the validation data")
    c.add_argument("model", type=int)
    c.add_argument("--csv", metavar="FILE", help="write the per-era diagnostics here")
    c.add_argument("--upload", metavar="FILE", help="your bot's validation predictions")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    c.set_defaults(run=cmd_diagnostics)
    c = sub.add_parser("runtime", help="the Python and package versions models run under")
    c.set_defaults(run=cmd_runtime)
    c = sub.add_parser("tournament", help="a tournament's ranking (cumulative, or --round N)")
    c.add_argument("challenge", type=int)
    c.add_argument("phase")
    c.add_argument("--round", type=int)
    c.set_defaults(run=cmd_tournament)
