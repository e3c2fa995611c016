"""evalserver settings: one module, driven only by environment variables.

Every variable is documented in `.env.example`. A bad value raises at start-up.
Defaults give the embedded mode (SQLite, on-disk Celery broker) that `make demo`
uses; production and CI set DATABASE_URL and CELERY_BROKER_URL.
"""

from __future__ import annotations

import ipaddress
import shlex
import zoneinfo
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from challenges.identity.oidc_config import oidc_settings
from evalserver.env import (
    broker_transport_options,
    cache_from_url,
    env,
    envbool,
    envfloat,
    envint,
    envlist,
    group_team_pairs,
    read_dotenv,
    s3_storage,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DOTENV = BASE_DIR / ".env"


if DOTENV.is_file():
    read_dotenv(DOTENV)


DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY (or SECRET_KEY_FILE) to a long "
            "random string, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`, "
            "or set DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env("SITE_URL", "http://localhost:8000")

# Where everything lives on disk. Uploaded bundles, scripts, annotations and submissions
# go under MEDIA_ROOT; nothing is ever written outside it.
VAR_DIR = Path(env("EVALSERVER_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_URL = "/static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "challenges",
    "workers",
    "frontend",
]

MIDDLEWARE = [
    "evalserver.health.HealthCheckMiddleware",
    # Outermost of the rest, so a view's database error becomes a 503 (it runs last).
    "evalserver.health.DatabaseUnavailableMiddleware",
    "evalserver.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language, or the switcher's cookie); a signed-in
    # person's saved choice wins, once AuthenticationMiddleware knows who they are.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "frontend.middleware.PreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "evalserver.not_found.OwnNotFoundPageMiddleware",
]

ROOT_URLCONF = "evalserver.urls"
WSGI_APPLICATION = "evalserver.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.sign_in",
                "django.template.context_processors.i18n",
                "frontend.context.page",
                "frontend.context.unread_notifications",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'evalserver.sqlite3'}")
try:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60))
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker) share the file in embedded mode: wait for locks
    # instead of failing at once, and use WAL so readers don't block the writer.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Hot statements' plans kept by PostgreSQL (challenges.prepared); off behind PgBouncer.
DB_SERVER_PREPARED = envbool("DB_SERVER_PREPARED", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# English is the source language; Japanese is complete (locale/ja/LC_MESSAGES). One
# catalogue at the repository root serves every app, so a string has one translation.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# Dates and numbers as each language writes them (evalserver/formats/<lang>/formats.py).
FORMAT_MODULE_PATH = ["evalserver.formats"]
# The site's time zone: pages show dates in it until a person's own zone is known (their
# profile, or their browser's on the first visit). Stored times are UTC either way.
TIME_ZONE = env("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(
        f"TIME_ZONE={TIME_ZONE!r} is not an IANA time zone (for example Asia/Tokyo): {exc}"
    ) from exc
USE_TZ = True


# Stored files (bundles, scripts, annotations, submissions, round files): MEDIA_ROOT on
# this machine by default; an S3-compatible bucket (AWS, MinIO, ...) through django-storages
# once S3_BUCKET is set, so that workers on other machines need no shared disk. Objects are
# private (no public ACL, and every URL the storage hands out is presigned and expires).
S3_BUCKET = env("S3_BUCKET")
_default_storage = (
    s3_storage() if S3_BUCKET else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)

STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads: anything over 2.5 MiB streams to a temporary file, never into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR", "") or None
# Stored files are for the platform's processes only: participants' models run as another
# uid (EVALUATION_PREDICT_UID) that must not read annotations or other teams' files.
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2

# Challenge bundles: caps against zip bombs (see challenges.bundle.Limits).
BUNDLE_MAX_UPLOAD_BYTES = envint("BUNDLE_MAX_UPLOAD_BYTES", 2 * 1024**3)
BUNDLE_MAX_ENTRIES = envint("BUNDLE_MAX_ENTRIES", 10_000)
BUNDLE_MAX_UNCOMPRESSED_BYTES = envint("BUNDLE_MAX_UNCOMPRESSED_BYTES", 4 * 1024**3)
BUNDLE_MAX_COMPRESSION_RATIO = envint("BUNDLE_MAX_COMPRESSION_RATIO", 200)

# CodaLab/Codabench bundles (docs/codalab.md): which local interpreter stands in for a
# bundle's docker_image, "image=interpreter" pairs separated by commas; an interpreter
# is a name on PATH or an absolute path (e.g. a pyenv 2.7 for codalab-legacy:py27).
# Unmapped Python images run in the evaluation environment's own Python 3.
CODALAB_IMAGE_MAP = dict(i.split("=", 1) for i in envlist("CODALAB_IMAGE_MAP", "") if "=" in i)
# What a v1 bundle without docker_image ran in on CodaLab.
CODALAB_DEFAULT_IMAGE = env("CODALAB_DEFAULT_IMAGE", "codalab/codalab-legacy:py37")

# Celery. Embedded default: an on-disk broker under VAR_DIR, so `make demo` needs no Redis.
# (With a host named, kombu does not warn "No hostname was supplied" at every connection;
# the on-disk transport ignores it.)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL, VAR_DIR / "broker")
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "evalserver")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: each evaluation then opened a new PostgreSQL connection (~20 ms, a backend
# with cold caches). Reused for this many tasks instead; a connection the server dropped
# fails the next query, which the worker retries on a fresh one (workers.evaluation).
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 1000)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)

# Submissions and the pipeline.
# Per phase: the bundle's max_submission_size_bytes.
SUBMISSION_MAX_BYTES = envint("SUBMISSION_MAX_BYTES", 1024**3)
SUBMISSION_DEADLINE_GRACE_S = envint("SUBMISSION_DEADLINE_GRACE_S", 120)
SWEEPER_INTERVAL_S = envint("SWEEPER_INTERVAL_S", 30)
SWEEPER_REQUEUE_AFTER_S = envint("SWEEPER_REQUEUE_AFTER_S", 300)
CELERY_BEAT_SCHEDULE = {
    "sweep-submissions": {
        "task": "workers.sweep_submissions",
        "schedule": float(SWEEPER_INTERVAL_S),
    },
    "open-rounds": {
        "task": "workers.sweep_rounds",
        "schedule": float(SWEEPER_INTERVAL_S),
    },
    "purge-failed-inputs": {"task": "workers.purge_failed_inputs", "schedule": 3600.0},
    "sweep-uploads": {"task": "workers.sweep_uploads", "schedule": 3600.0},
    # Notifications: the outbox's lost messages, phases opening or closing within 24
    # hours, and the weekly digests (challenges.notifications).
    "sweep-notifications": {
        "task": "workers.sweep_notifications",
        "schedule": float(SWEEPER_INTERVAL_S),
    },
    "sweep-tournaments": {
        "task": "workers.sweep_tournaments",
        "schedule": float(SWEEPER_INTERVAL_S),
    },
}
# Storage bounds (issue 11). Bytes of submission files a team may keep per challenge
# (0: no cap); failed submissions' files are removed this many days after they failed
# (0: kept); failed submissions a team may make per phase and UTC day (0: no cap).
SUBMISSION_TEAM_STORAGE_BYTES = envint("SUBMISSION_TEAM_STORAGE_BYTES", 20 * 1024**3)
FAILED_SUBMISSION_RETENTION_DAYS = envint("FAILED_SUBMISSION_RETENTION_DAYS", 7)
SUBMISSION_MAX_FAILED_PER_DAY = envint("SUBMISSION_MAX_FAILED_PER_DAY", 20)

# Resumable uploads (tus, docs/transfers.md): the most one upload may declare, and how
# long an upload nobody touched keeps its parts before the sweeper removes it.
RESUMABLE_UPLOAD_MAX_BYTES = envint("RESUMABLE_UPLOAD_MAX_BYTES", 10 * 1024**3)
RESUMABLE_UPLOAD_TTL_S = envint("RESUMABLE_UPLOAD_TTL_S", 24 * 3600)
# Downloads: on the filesystem, let a front proxy send the bytes (nginx: "X-Accel-Redirect",
# Apache/lighttpd: "X-Sendfile"; empty: Django streams them). DOWNLOAD_ACCEL_PREFIX is the
# proxy's internal location mapped to MEDIA_ROOT (X-Accel-Redirect only). Under object
# storage, downloads redirect to a presigned URL valid DOWNLOAD_URL_MAX_AGE_S seconds.
DOWNLOAD_OFFLOAD_HEADER = env("DOWNLOAD_OFFLOAD_HEADER", "")
if DOWNLOAD_OFFLOAD_HEADER not in ("", "X-Accel-Redirect", "X-Sendfile"):
    raise ImproperlyConfigured(
        "DOWNLOAD_OFFLOAD_HEADER must be empty, X-Accel-Redirect or X-Sendfile, "
        f"not {DOWNLOAD_OFFLOAD_HEADER!r}"
    )
DOWNLOAD_ACCEL_PREFIX = env("DOWNLOAD_ACCEL_PREFIX", "/protected-media/")
DOWNLOAD_URL_MAX_AGE_S = envint("DOWNLOAD_URL_MAX_AGE_S", 300)

# Live tournaments: model runs and scoring go to this queue, which every worker also
# consumes (empty: "<CELERY_QUEUE>-rounds"), so a round's models share the workers with
# ordinary submissions instead of queueing in front of them.
TOURNAMENT_QUEUE = env("TOURNAMENT_QUEUE", "")
# A folder the beat schedule opens rounds from (docs/tournaments.md); empty: off.
TOURNAMENT_ROUNDS_DIR = env("TOURNAMENT_ROUNDS_DIR", "")
# Prediction files a team may upload to one round (its bot's last one counts).
TOURNAMENT_MAX_UPLOADS_PER_ROUND = envint("TOURNAMENT_MAX_UPLOADS_PER_ROUND", 20)

# Remote evaluation (EvalAI's API): how long a host's worker holds a submission it received
# from its challenge's queue before the message is visible again (or the attempt is lost).
REMOTE_EVALUATION_VISIBILITY_TIMEOUT_S = envint("REMOTE_EVALUATION_VISIBILITY_TIMEOUT_S", 3600)
# Links in EvalAI's API answers (input, result and log files) work without a token this long.
EVALAI_FILE_URL_MAX_AGE_S = envint("EVALAI_FILE_URL_MAX_AGE_S", 3600)

# Round webhooks: participants' URLs get a signed POST when a round opens.
WEBHOOK_TIMEOUT_S = envint("WEBHOOK_TIMEOUT_S", 10)
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", 6)
WEBHOOK_RETRY_BASE_S = envfloat("WEBHOOK_RETRY_BASE_S", 10.0)
WEBHOOK_ALLOW_PRIVATE = envbool("WEBHOOK_ALLOW_PRIVATE", False)

# Evaluation defaults (per-phase `resources` in the bundle override them).
EVALUATION_TIME_LIMIT_S = envint("EVALUATION_TIME_LIMIT_S", 600)
EVALUATION_MEMORY_MB = envint("EVALUATION_MEMORY_MB", 4096)
EVALUATION_MAX_PROCESSES = envint("EVALUATION_MAX_PROCESSES", 64)
EVALUATION_LOG_MAX_BYTES = envint("EVALUATION_LOG_MAX_BYTES", 1024**2)
# The largest file one evaluate() may write (RLIMIT_FSIZE), in MB.
EVALUATION_MAX_FILE_MB = envint("EVALUATION_MAX_FILE_MB", 10240)
# The uid evaluate() runs as when the worker is root.
EVALUATION_SANDBOX_UID = envint("EVALUATION_SANDBOX_UID", 65534)
# Workers prove at start that a sandboxed child can import what scripts import lazily
# (workers.sandbox.check) and refuse to start otherwise.
EVALUATION_SANDBOX_CHECK = envbool("EVALUATION_SANDBOX_CHECK", True)
# Size of each evaluate() child's own /tmp (a tmpfs, so memory; gone when the child ends).
EVALUATION_TMP_MB = envint("EVALUATION_TMP_MB", 2048)
# Warm parents (one per script version) kept per worker process.
EVALUATION_MAX_WARM = envint("EVALUATION_MAX_WARM", 8)
# Unpacked scripts and their environments, per machine. The sandbox user must be able to
# read it: every folder on the way needs o+x.
EVALUATION_CACHE_DIR = Path(env("EVALUATION_CACHE_DIR", str(VAR_DIR / "cache")))
# Stored files a worker has fetched (scripts, annotations, features, submissions) are kept
# in EVALUATION_CACHE_DIR/blobs by sha256 up to this many bytes, least recently used first out.
EVALUATION_CACHE_MAX_BYTES = envint("EVALUATION_CACHE_MAX_BYTES", 20 * 1024**3)
EVALUATION_ENV_BUILD_TIMEOUT_S = envint("EVALUATION_ENV_BUILD_TIMEOUT_S", 900)
# Extra pip arguments for requirements environments, split like a shell would: an
# air-gapped site points pip at its own wheels ("--no-index --find-links /srv/wheels").
EVALUATION_PIP_ARGS = shlex.split(env("EVALUATION_PIP_ARGS", ""))
# Code submissions: participants' models run as this uid (when the worker is root), never
# the evaluate() uid, which may read staged annotation files. workers.code_runner reads it
# from the environment too, so `python -m workers.predict` needs no settings.
EVALUATION_PREDICT_UID = envint("EVALUATION_PREDICT_UID", 65533)
# Model uploads (DESIGN section 16): the Python versions a pickled model may run under,
# "3.11=/usr/bin/python3.11,3.12=/opt/python3.12/bin/python3". Each version other than the
# worker's own gets the worker's model packages (PREDICT_RUNTIME_PACKAGES, at the worker's
# versions) in an environment of its own under EVALUATION_CACHE_DIR. Empty: the worker's
# own interpreter only.
PREDICT_PYTHONS = env("PREDICT_PYTHONS", "")
PREDICT_RUNTIME_PACKAGES = env(
    "PREDICT_RUNTIME_PACKAGES", "numpy pandas pyarrow cloudpickle scikit-learn scipy"
).split()
# Without a network namespace the worker refuses code submissions unless this says yes.
EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION = envbool(
    "EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION", False
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous API call then gets 401 with WWW-Authenticate, not 403.
        "challenges.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # DRF's parsers, with a depth and size limit on JSON (challenges.json_limits).
    "DEFAULT_PARSER_CLASSES": [
        "challenges.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "challenges.api.errors.exception_handler",
    # Reverse proxies in front of the app that append to X-Forwarded-For. Unset, DRF would
    # take a client's own X-Forwarded-For as its address, and a per-address throttle would
    # be one made-up header away from useless.
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "evalserver API",
    "DESCRIPTION": "Challenges, submissions and leaderboards. Authenticate with "
    "`Authorization: Token <key>` (POST /api/v1/auth/token/).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two choice sets share the field name "kind": name each.
    "ENUM_NAME_OVERRIDES": {
        "NotificationKindEnum": "challenges.models.notifications.Kind",
        "ThreadKindEnum": "challenges.models.discussion.Thread.Kind",
    },
}

# Issue 11: limits on what strangers can push. Rates are "<count>/<second|minute|hour|day>";
# an empty value turns that limit off. Counted in the cache below (see challenges.throttles).
THROTTLE_RATES = {
    "login_ip": env("THROTTLE_LOGIN_IP", "30/minute"),
    "login_user": env("THROTTLE_LOGIN_USER", "10/minute"),
    "token_ip": env("THROTTLE_TOKEN_IP", "30/minute"),
    "token_user": env("THROTTLE_TOKEN_USER", "10/minute"),
    "signup_ip": env("THROTTLE_SIGNUP_IP", "10/hour"),
    "signup_email": env("THROTTLE_SIGNUP_EMAIL", "3/hour"),
    "password_reset_ip": env("THROTTLE_PASSWORD_RESET_IP", "10/hour"),
    "password_reset_user": env("THROTTLE_PASSWORD_RESET_USER", "3/hour"),
    "submit_user": env("THROTTLE_SUBMIT_USER", "120/minute"),
    "invite_user": env("THROTTLE_INVITE_USER", "30/hour"),
    "forum_user": env("THROTTLE_FORUM_USER", "30/minute"),
}
# EvalAI's team invite puts a registered user in the team at once (and says whether the
# address has an account). Off: the user is emailed the team's invitation code and joins
# by using it, and every invite gets the same answer.
EVALAI_INVITE_ADDS_MEMBERS = envbool("EVALAI_INVITE_ADDS_MEMBERS", False)
# Throttle counters, which every web process must share for the limits to hold: redis://...
# in production; the default, files under VAR_DIR, serves every process of one machine
# (`make demo` runs two gunicorn workers); locmem:// counts per process. evalserver.env.
CACHE_URL = env("CACHE_URL", "")
CACHES = {"default": cache_from_url(CACHE_URL, VAR_DIR / "throttle-cache")}
# API tokens expire this many days after they were made; 0 keeps them until revoked.
TOKEN_TTL_DAYS = envint("TOKEN_TTL_DAYS", 0)

# Sign-in with the organisation's identity provider (docs/deployment.md, "Company sign-in"):
# OpenID Connect through mozilla-django-oidc (challenges.identity.oidc_config), LDAP /
# Active Directory through django-auth-ldap (challenges.identity.ldap_config).
OIDC_ENABLED = bool(env("OIDC_DISCOVERY_URL", ""))
globals().update(oidc_settings(env, envbool, envint))

LDAP_SERVER_URI = env("LDAP_SERVER_URI", "")
LDAP_ENABLED = bool(LDAP_SERVER_URI)
if LDAP_ENABLED:
    from challenges.identity.ldap_config import ldap_settings

    globals().update(ldap_settings(env, envbool, envint))

# Groups at the provider (OIDC's groups claim, LDAP's group search) decide roles at every
# sign-in: members of SSO_ADMIN_GROUPS are site admins (staff and superuser), members of a
# group in SSO_HOST_TEAM_GROUPS ("group=Host team;other group=Other team") are in that
# host team; a user no longer in the group loses the role. Empty: roles are left alone.
SSO_ADMIN_GROUPS = envlist("SSO_ADMIN_GROUPS", "")


SSO_HOST_TEAM_GROUPS = group_team_pairs("SSO_HOST_TEAM_GROUPS")
# SSO only: no sign-up, no local passwords, no password reset, except for the break-glass
# admin that `manage.py create_breakglass_admin` creates.
SSO_ONLY = envbool("SSO_ONLY", False)
if SSO_ONLY and not (OIDC_ENABLED or LDAP_ENABLED):
    raise ImproperlyConfigured(
        "SSO_ONLY=true needs a provider to sign in with: set OIDC_DISCOVERY_URL or "
        "LDAP_SERVER_URI (docs/deployment.md, Company sign-in)."
    )
# Sign-up (local and first SSO sign-in) and taking part in any challenge are open only to
# email addresses at these domains or their subdomains; empty: any address.
ALLOWED_EMAIL_DOMAINS = envlist("ALLOWED_EMAIL_DOMAINS", "")
AUTHENTICATION_BACKENDS = [
    "challenges.identity.local.LocalPasswordBackend",
    *(["challenges.identity.ldap.LDAPBackend"] if LDAP_ENABLED else []),
    *(["challenges.identity.oidc.OIDCBackend"] if OIDC_ENABLED else []),
]

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "evalserver@localhost")
# SMTP (EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend): notifications go
# through it from the outbox, retried while the server is down (docs/discussion.md).
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
# The notification outbox: attempts per message, the first retry's delay (doubling), and
# how long a claimed message may stay unsent before the sweeper hands it out again.
OUTBOX_MAX_ATTEMPTS = envint("OUTBOX_MAX_ATTEMPTS", 12)
OUTBOX_RETRY_BASE_S = envfloat("OUTBOX_RETRY_BASE_S", 15.0)
OUTBOX_CLAIM_TIMEOUT_S = envint("OUTBOX_CLAIM_TIMEOUT_S", 300)
# Prometheus metrics at /metrics: readable with `Authorization: Bearer <METRICS_TOKEN>`, or
# from the addresses or networks in METRICS_ALLOWED_ADDRESSES; with neither set, /metrics
# answers 404.
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_ALLOWED_ADDRESSES = envlist("METRICS_ALLOWED_ADDRESSES", "")
for _network in METRICS_ALLOWED_ADDRESSES:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_ADDRESSES: {_network!r} is not an address or network ({exc})"
        ) from exc

# Production hardening: on whenever DEBUG is off (check --deploy stays clean).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
