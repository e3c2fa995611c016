"""Typed readers of the environment for evalserver/settings.py (healthchecks' envbool,
envint...), and the few settings that are built from several variables. A bad value
raises ImproperlyConfigured at start-up, naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def read_dotenv(path: Path) -> None:
    """NAME=value lines of the checkout's `.env` (written by `make demo`, or copied from
    .env.example for Compose) as defaults: the real environment wins. So `manage.py ...`
    works as the README prints it in the checkout where `make demo` ran."""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier():
            raise ImproperlyConfigured(f"{path}, line {number}: expected NAME=value, got {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(name, value)


def env(name: str, default: str = "") -> str:
    """A string setting. `NAME_FILE` (a Docker secret) wins over `NAME`."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = env(name, "")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true or false")


def envint(name: str, default: int) -> int:
    raw = env(name, "")
    if raw == "":
        return default
    try:
        return int(raw.replace("_", ""))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def envfloat(name: str, default: float) -> float:
    raw = env(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def s3_storage() -> dict:
    """The S3 storage the S3_* variables describe (tests call this after setting them)."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("S3_BUCKET"),
            "endpoint_url": env("S3_ENDPOINT_URL") or None,
            "access_key": env("S3_ACCESS_KEY_ID") or None,
            "secret_key": env("S3_SECRET_ACCESS_KEY") or None,
            "region_name": env("S3_REGION") or None,
            # Everything under this prefix; several sites (or tests) can share a bucket.
            "location": env("S3_PREFIX").strip("/"),
            # Our names are unique already (challenges.services.storage); never overwrite.
            "file_overwrite": False,
            # Objects are private; stores that refuse ACL headers: S3_DEFAULT_ACL= (empty).
            "default_acl": env("S3_DEFAULT_ACL", "private") or None,
            "querystring_auth": True,
            "querystring_expire": envint("S3_URL_EXPIRE_S", 300),
            "addressing_style": env("S3_ADDRESSING_STYLE", "path") or None,
            "signature_version": "s3v4",
        },
    }


def group_team_pairs(name: str) -> dict[str, str]:
    pairs = {}
    for item in env(name, "").split(";"):
        if not item.strip():
            continue
        group, sep, team = item.partition("=")
        if not sep or not group.strip() or not team.strip():
            raise ImproperlyConfigured(
                f"{name}: expected 'group=Host team name' pairs separated by ';', got {item!r}"
            )
        pairs[group.strip()] = team.strip()
    return pairs


def cache_from_url(url: str, default_folder: Path) -> dict:
    """The throttle cache CACHE_URL names: redis://..., file:///path, locmem://, or files
    under `default_folder` when empty (shared by every process of one machine)."""
    if url.startswith(("redis://", "rediss://")):
        # Django's, with one client per pool instead of one per command (evalserver.cache).
        return {"BACKEND": "evalserver.cache.RedisCache", "LOCATION": url}
    if url in ("", "file://") or url.startswith("file:///"):
        return {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": url.removeprefix("file://") or str(default_folder),
            # Django culls a third of the entries past MAX_ENTRIES; a throttle counter culled
            # is a budget restarted, so keep room for many addresses and users.
            "OPTIONS": {"MAX_ENTRIES": envint("CACHE_MAX_ENTRIES", 50_000)},
        }
    if url == "locmem://":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ImproperlyConfigured(
        f"CACHE_URL={url!r}: use redis://..., file:///path, locmem:// or leave it empty "
        "(files under EVALSERVER_VAR_DIR)."
    )


def broker_transport_options(url: str, folder: Path) -> dict[str, object]:
    """Celery's broker transport options: the on-disk broker's folders under `folder`
    (made here), or Redis's visibility timeout."""
    if url.startswith("filesystem://"):
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # kombu's default is ./control, a folder in whatever directory the worker starts.
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    return {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)}
