"""`evalserver-cli`: the participant's (and bot's) command line, over the REST API only.

    evalserver-cli login https://comp.example.org alice          # asks for the password
    evalserver-cli challenges
    evalserver-cli data 3 dev --out data/                       # public files; resumes partial ones
    evalserver-cli quota 3 dev
    evalserver-cli submit 3 dev predictions.csv --wait          # resumable; progress, then the result
    evalserver-cli status 41 --wait
    evalserver-cli leaderboard 3 dev dev_split                  # phase, then split codename
    evalserver-cli round 3 rounds --live live.csv               # tournaments: see cli_tournament

No Django here: a participant installs the project (or copies this file) and needs only
`requests`. The server and token come from --url/--token, EVALSERVER_URL/EVALSERVER_TOKEN,
or the file `login` writes (EVALSERVER_CONFIG, default ~/.config/evalserver/cli.json).
Exit status: 0 done, 1 the server refused (its message is printed), 2 usage, 3 the
submission ended failed or cancelled, 4 --wait timed out.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import json
import os
import sys
import time
import uuid
from gettext import gettext as _
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

FINAL = {"finished", "failed", "cancelled", "partially_evaluated"}
CHUNK = 1024 * 1024


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def config_path() -> Path:
    default = Path.home() / ".config" / "evalserver" / "cli.json"
    return Path(os.environ.get("EVALSERVER_CONFIG", default))


class Api:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(
                method, f"{self.url}/api/v1/{path}", timeout=kwargs.pop("timeout", 60), **kwargs
            )
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise CliError(f"{method} /api/v1/{path}: {response.status_code} {_detail(response)}")
        return response

    def get(self, path: str, **kwargs) -> Any:
        return self.call("GET", path, **kwargs).json()


# Answers whose `detail` says it all (the other keys are for programs): printed as text.
_PLAIN_ERROR_KEYS = {"detail", "field", "choices", "labels", "quota", "resets_at", "storage"}


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "detail" in body and set(body) <= _PLAIN_ERROR_KEYS:
        return str(body["detail"])
    return json.dumps(body, indent=2)


class _Multipart:
    """A multipart body read from disk as it is sent, with a known length (no chunked
    encoding), reporting progress: a 10 GB file never sits in memory."""

    def __init__(self, file: Path, fields: dict[str, str], progress) -> None:
        boundary = f"evalserver-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self.parts: list[bytes | Path] = [head, file, f"\r\n--{boundary}--\r\n".encode()]
        self.size = file.stat().st_size
        self.length = len(head) + self.size + len(self.parts[2])
        self.progress = progress
        self.sent = 0
        self._open: IO[bytes] | None = None

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        while self.parts:
            part = self.parts[0]
            if isinstance(part, bytes):
                self.parts.pop(0)
                if part:
                    return part
                continue
            if self._open is None:
                self._open = part.open("rb")
            data = self._open.read(CHUNK if n is None or n < 0 else n)
            if data:
                self.sent += len(data)
                self.progress(self.sent, self.size)
                return data
            self._open.close()
            self._open = None
            self.parts.pop(0)
        return b""


def _progress_bar(enabled: bool):
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        if not enabled:
            return
        fraction = done / total if total else 1.0
        rate = done / max(time.monotonic() - started, 1e-6) / CHUNK
        bar = "#" * int(fraction * 30)
        sys.stderr.write(
            f"\r[{bar:<30}] {fraction:6.1%} {done / CHUNK:8.1f}/{total / CHUNK:.1f} MiB "
            f"{rate:6.1f} MiB/s"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _print_table(rows: list[dict], columns: list[str]) -> None:
    shown = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in shown:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# ---------------------------------------------------------------- commands


def cmd_login(args, _api) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    api = Api(args.server, None)
    token = api.call(
        "POST", "auth/token/", data={"username": args.username, "password": password}
    ).json()["token"]
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": args.server, "token": token}, fh)
    print(f"logged in to {args.server} as {args.username}; token saved in {path}")
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


def _sha256_file(path: Path):
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest


def download_resumable(api: Api, path: str, target: Path, *, size: int, sha256: str) -> int:
    """Download to `target`, continuing a partial file with Range/If-Range; the result's
    sha256 is checked. Returns the byte it resumed at (0: from the start)."""
    have = target.stat().st_size if target.exists() else 0
    if have == size and _sha256_file(target).hexdigest() == sha256:
        return have  # complete already
    if have >= size:
        have = 0  # longer, or as long but different: not a prefix of this file
    headers = {}
    if have:
        # If-Range: the rest only if the server's file is still the one we have the start of.
        headers = {"Range": f"bytes={have}-", "If-Range": f'"{sha256}"'}
    response = api.call("GET", path, stream=True, headers=headers, timeout=None)
    if response.status_code == 206:
        digest = _sha256_file(target)
        mode = "ab"
    else:
        digest, mode, have = hashlib.sha256(), "wb", 0
    with target.open(mode) as fh:
        for chunk in response.iter_content(CHUNK):
            digest.update(chunk)
            fh.write(chunk)
    if digest.hexdigest() != sha256:
        target.unlink(missing_ok=True)
        raise CliError(f"{target}: sha256 does not match the server's; download it again")
    return have


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


# ---------------------------------------------------------------- resumable uploads (tus)


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalserver"
    return Path(os.environ.get("EVALSERVER_CACHE_DIR") or default)


class _Slice:
    """`length` bytes of an open file from its current position, read as requests sends
    them (a known Content-Length, never the whole slice in memory)."""

    def __init__(
        self, fh: IO[bytes], length: int, progress=None, done: int = 0, total: int = 0
    ) -> None:
        self.fh, self.left, self.progress = fh, length, progress
        self.length, self.done, self.total = length, done, total

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        want = min(self.left, CHUNK if n is None or n < 0 else n)
        data = self.fh.read(want) if want > 0 else b""
        self.left -= len(data)
        self.done += len(data)
        if data and self.progress is not None:
            self.progress(self.done, self.total)
        return data


def tus_metadata(values: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}"
        for key, value in values.items()
        if value is not None
    )


def upload_resumable(
    api: Api,
    file: Path,
    meta: dict[str, str],
    *,
    progress,
    part_bytes: int = 32 * 1024 * 1024,
    retries: int = 5,
) -> dict:
    """Upload `file` with the server's tus endpoint, resuming an earlier attempt of the same
    file (same server, path, size and mtime: the state file under cache_dir()), and retrying
    dropped connections from the offset the server reports. Returns what finishing made."""
    stat = file.stat()
    key = hashlib.sha256(
        json.dumps([api.url, str(file.resolve()), stat.st_size, stat.st_mtime_ns, meta]).encode()
    ).hexdigest()[:32]
    state_path = cache_dir() / "uploads" / f"{key}.json"
    state: dict = {}
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except ValueError:
            state = {}
    tus = {"Tus-Resumable": "1.0.0"}
    offset = None
    if state.get("url"):
        head = api.session.head(state["url"], headers=tus, timeout=60)
        if head.status_code == 200:
            offset = int(head.headers["Upload-Offset"])
            print(f"resuming upload at byte {offset} of {stat.st_size}", file=sys.stderr)
        else:
            state = {}  # swept, finished elsewhere or another server: start again
    if offset is None:
        sha = state.get("sha256") or _sha256_file(file).hexdigest()
        created = api.call(
            "POST",
            "uploads/",
            headers={
                **tus,
                "Upload-Length": str(stat.st_size),
                "Upload-Metadata": tus_metadata({**meta, "filename": file.name, "sha256": sha}),
            },
        )
        # The path only: behind a proxy the server may not know the scheme and host the
        # client used.
        path = urlsplit(created.headers["Location"]).path
        state = {"url": api.url + path[path.index("/api/v1/") :], "sha256": sha}
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state))
        offset = 0
    failures = 0
    with file.open("rb") as fh:
        while offset < stat.st_size:
            length = min(part_bytes, stat.st_size - offset)
            fh.seek(offset)
            # tus checksum: the server keeps this PATCH only if its bytes arrive unchanged.
            piece, digest = _Slice(fh, length), hashlib.sha256()
            while chunk := piece.read():
                digest.update(chunk)
            checksum = base64.b64encode(digest.digest()).decode()
            fh.seek(offset)
            body = _Slice(fh, length, progress, offset, stat.st_size)
            try:
                response = api.session.patch(
                    state["url"],
                    data=body,
                    headers={
                        **tus,
                        "Upload-Offset": str(offset),
                        "Upload-Checksum": f"sha256 {checksum}",
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=None,
                )
            except requests.RequestException as exc:
                response, reason = None, str(exc)
            if response is not None:
                if response.status_code == 204:
                    offset, failures = int(response.headers["Upload-Offset"]), 0
                    continue
                reason = f"{response.status_code} {_detail(response)}"
                # 409: another offset than ours; 460: the bytes were damaged on the way.
                if response.status_code < 500 and response.status_code not in (409, 460):
                    raise CliError(f"PATCH {state['url']}: {reason}")
            failures += 1
            if failures > retries:
                raise CliError(
                    f"the upload stopped at byte {offset} ({reason}); run the same command "
                    "again to resume"
                )
            time.sleep(min(2**failures * 0.25, 10))
            head = api.session.head(state["url"], headers=tus, timeout=60)
            if head.status_code != 200:
                raise CliError(f"HEAD {state['url']}: {head.status_code}; submit again")
            offset = int(head.headers["Upload-Offset"])
    progress(stat.st_size, stat.st_size)
    finished = api.call("POST", state["url"].split("/api/v1/", 1)[1] + "finish/", headers=tus)
    state_path.unlink(missing_ok=True)
    return finished.json()


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
        print(_("no entries yet"))
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


# ---------------------------------------------------------------- parsing


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evalserver-cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="the server (default: EVALSERVER_URL or the saved login)")
    p.add_argument("--token", help="an API token (default: EVALSERVER_TOKEN or the saved login)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("login", help="get an API token and save it")
    c.add_argument("server")
    c.add_argument("username")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
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

    from evalserver import cli_tournament  # its commands use this module's helpers

    cli_tournament.add_parsers(sub)
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


if __name__ == "__main__":
    raise SystemExit(main())
