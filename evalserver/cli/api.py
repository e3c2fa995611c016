"""The REST API as `evalserver-cli` sees it: the session, errors, multipart bodies, progress
bars and tables. `requests` only."""

from __future__ import annotations

import json
import os
import sys
import time
import unicodedata
import uuid
from pathlib import Path
from typing import IO, Any

import requests

FINAL = {"finished", "failed", "cancelled", "partially_evaluated"}
CHUNK = 1024 * 1024


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _quoted(name: str) -> str:
    """A file name in a multipart header, UTF-8 as browsers send it (HTML's form
    encoding: quotes and line breaks percent-encoded), so 提出.csv arrives as 提出.csv."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


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
            message = f"{method} /api/v1/{path}: {response.status_code} {_detail(response)}"
            if response.status_code == 401:
                message += "\n" + signin_hint(self.url)
            raise CliError(message)
        return response

    def get(self, path: str, **kwargs) -> Any:
        return self.call("GET", path, **kwargs).json()


def signin_hint(url: str) -> str:
    return (
        f"Sign in with `evalserver-cli login {url} USERNAME`. If you sign in to the site "
        f"with your organisation's account (SSO), create a token at {url}/accounts/tokens/ "
        f"and save it with `evalserver-cli login {url} --token-stdin` (or set "
        "EVALSERVER_TOKEN)."
    )


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
            f'filename="{_quoted(file.name)}"\r\nContent-Type: application/octet-stream\r\n\r\n'
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


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide and full-width characters
    (漢字, かな, Ｆｕｌｌ, most emoji) take two, combining marks and joiners none."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 0)


def _print_table(rows: list[dict], columns: list[str]) -> None:
    shown = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [
        max([display_width(c), *(display_width(r[i]) for r in shown)])
        for i, c in enumerate(columns)
    ]
    print("  ".join(pad(c, w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in shown:
        print("  ".join(pad(v, w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
