"""The `evalserver-cli` commands for challenges, data, submissions and leaderboards (the
tournament ones are in tournament.py)."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from pathlib import Path

from evalserver.cli.api import (
    FINAL,
    Api,
    CliError,
    _print_table,
    _progress_bar,
    config_path,
    signin_hint,
)
from evalserver.cli.transfers import download_resumable, upload_resumable

# ---------------------------------------------------------------- commands


def cmd_login(args, _api) -> int:
    if args.token_stdin:
        # A token made on the site's tokens page: how SSO users sign in, having no password.
        token = sys.stdin.readline().strip()
        if not token:
            raise CliError("no token on stdin: paste the token from /accounts/tokens/", 2)
        Api(args.server, token).call("GET", "auth/tokens/")  # refused at once if it is wrong
        who = "your token"
    else:
        if not args.username:
            raise CliError(
                "give a USERNAME (and type the password), or --token-stdin.\n"
                + signin_hint(args.server.rstrip("/")),
                2,
            )
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
        try:
            token = (
                Api(args.server, None)
                .call("POST", "auth/token/", data={"username": args.username, "password": password})
                .json()["token"]
            )
        except CliError as exc:
            raise CliError(f"{exc}\n{signin_hint(args.server.rstrip('/'))}") from None
        who = args.username
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": args.server, "token": token}, fh)
    print(f"logged in to {args.server} as {who}; token saved in {path}")
    return 0


def cmd_challenges(args, api: Api) -> int:
    body = api.get("challenges/")
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    _print_table(rows, ["id", "title", "start_date", "end_date"])
    return 0


def cmd_challenge(args, api: Api) -> int:
    challenge = api.get(f"challenges/{args.challenge}/")
    print(f"{challenge['id']}: {challenge['title']}")
    phases = challenge.get("phases", [])
    if phases:
        _print_table(phases, ["codename", "name", "start_date", "end_date"])
    return 0


def cmd_data(args, api: Api) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for item in api.get(f"challenges/{args.challenge}/phases/{args.phase}/data/"):
        target = out / Path(item["name"]).name
        resumed = download_resumable(
            api,
            f"challenges/{args.challenge}/phases/{args.phase}/data/{item['name']}",
            target,
            size=item["size"],
            sha256=item["sha256"],
        )
        note = f", resumed at byte {resumed}" if resumed else ""
        print(f"{target} ({item['size']} bytes, sha256 ok{note})")
    return 0


def cmd_quota(args, api: Api) -> int:
    body = api.get(f"challenges/{args.challenge}/phases/{args.phase}/quota/")
    print(f"remaining: {body['remaining']}")
    _print_table(body["quotas"], ["quota", "limit", "used", "remaining", "resets_at"])
    return 0


def cmd_submit(args, api: Api) -> int:
    file = Path(args.file)
    if not file.is_file():
        raise CliError(f"{file}: no such file", code=2)
    fields = {"method_name": args.method_name or "", "method_description": args.description or ""}
    if args.meta:
        fields["meta_attributes"] = args.meta
    if args.public is not None:
        fields["is_public"] = "true" if args.public else "false"
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    meta = {"kind": "submission", "challenge": str(args.challenge), "phase": args.phase, **fields}
    part_bytes = max(int(args.part_mib * 1024 * 1024), 1)
    result = upload_resumable(api, file, meta, progress=_progress_bar(show), part_bytes=part_bytes)
    created = {"id": result["submission"], "status": result["status"]}
    print(f"submission {created['id']}: {created['status']}")
    if not args.wait:
        return 0
    return _wait_and_show(api, created["id"], args.timeout)


def cmd_status(args, api: Api) -> int:
    if args.wait:
        return _wait_and_show(api, args.submission, args.timeout)
    return _show(api.get(f"submissions/{args.submission}/"))


def cmd_submissions(args, api: Api) -> int:
    body = api.get(f"challenges/{args.challenge}/phases/{args.phase}/submissions/")
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    _print_table(rows, ["id", "status", "submitted_at", "method_name"])
    return 0


def cmd_leaderboard(args, api: Api) -> int:
    params = {"order_by": args.order_by} if args.order_by else {}
    body = api.get(
        f"challenges/{args.challenge}/phases/{args.phase}/splits/{args.split}/leaderboard/",
        params=params,
    )
    rows = body.get("rows", body.get("results", [])) if isinstance(body, dict) else body
    labels = body.get("labels", []) if isinstance(body, dict) else []
    flat = []
    for row in rows:
        # `display` holds the scores rounded to the split's decimal precision.
        scores = row.get("display") or row.get("scores", [])
        if isinstance(scores, dict):
            scores = [scores.get(label) for label in labels]
        flat.append(
            {
                "rank": row.get("rank"),
                "team": row.get("team") or row.get("team_name"),
                **dict(zip(labels, scores, strict=False)),
                "baseline": "yes" if row.get("is_baseline") or row.get("baseline") else "",
            }
        )
    if not flat:
        print("no entries yet")
        return 0
    _print_table(flat, ["rank", "team", *labels, "baseline"])
    return 0


def _wait_and_show(api: Api, submission_id: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        body = api.get(f"submissions/{submission_id}/")
        if body["status"] in FINAL:
            return _show(body)
        if time.monotonic() > deadline:
            print(f"submission {submission_id}: still {body['status']} after {timeout:g} s")
            return 4
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def _show(body: dict) -> int:
    print(f"submission {body['id']}: {body['status']}")
    if body.get("failure_message"):
        print(f"  {body['failure_message']}")
    for result in body.get("results", []):
        split = result.get("split") or result.get("dataset_split")
        print(f"  {split}: {json.dumps(result.get('scores', {}))}")
    return 3 if body["status"] in {"failed", "cancelled"} else 0
