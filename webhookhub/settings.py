"""Project settings, read from the environment (and a `.env` file when present).

Every variable is documented in docs/configuration.md (the one list; `.env` is made from it).
"""

import base64
import hashlib
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

import environ

from hooks import SETTING_DEFAULTS as HOOKS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# `make run` writes .env on its first run (webhookhub/envfile.py); the environment wins.
ENV_FILE = Path(os.environ.get("WEBHOOKHUB_ENV_FILE") or BASE_DIR / ".env")
if ENV_FILE.is_file():
    environ.Env.read_env(ENV_FILE)


def _private_var_dir() -> None:
    """var/ holds keys and the database: only its owner may enter it."""
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    VAR_DIR.chmod(0o700)


def _private_file(path: Path, content: str = "") -> None:
    """Create `path` readable by its owner only (never world-readable, not even briefly);
    an existing one is made so."""
    if path.exists():
        path.chmod(0o600)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(content)


def _local_key(name: str, new: str) -> str:
    """A per-installation key kept in var/, so `make run` needs no configuration."""
    _private_var_dir()
    _private_file(VAR_DIR / name, new)
    return (VAR_DIR / name).read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_key(
    "secret_key", secrets.token_urlsafe(50)
)
# Fernet keys for secrets at rest (hooks.encryption): the first encrypts, all decrypt.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[]) or [
    _local_key("encryption_key", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
]
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
SITE_URL = env.str(
    "SITE_URL", default=f"http://localhost:{env.str('PORT', default='8000')}"
).rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "webhookhub.admin_site.HubAdminConfig",  # django.contrib.admin, webhooks first
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before django_q: its `qcluster` command is replaced by hooks' (the stop flag
    # its workers share, and the ticker).
    "hooks",
    "django_q",
    "axes",
    "webhookhub",
    "accounts",
    "jobs",
    "routes",
    "namespaces",
    "api",
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "namespaces.uploads.UploadLimitMiddleware",  # after auth, before CSRF reads the body
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webhookhub.security.ContentSecurityPolicyMiddleware",
    "routes.middleware.RouteEventsMiddleware",  # after auth: sees the final status
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into a 429 page
]

ROOT_URLCONF = "webhookhub.urls"
WSGI_APPLICATION = "webhookhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    _private_var_dir()
    db = env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name and name != ":memory:" and not name.startswith("file:"):
            # SQLite gives the -wal and -shm files it creates the database file's mode;
            # ones left from before are made private like it.
            _private_file(Path(name))
            for leftover in (Path(f"{name}-wal"), Path(f"{name}-shm")):
                if leftover.exists():
                    leftover.chmod(0o600)
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue on the busy timeout instead of failing with
        # "database is locked" half-way through a transaction.
        db.setdefault("OPTIONS", {}).update(
            {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
        # A file, not memory: worker subprocesses started by tests must see it.
        db["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    # Persistent connections: django-q2's broker calls close_old_connections() on
    # every enqueue, which with a max age of 0 reopens the connection each time.
    db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASES = {"default": _database()}
# A covering index's INCLUDE columns (hooks.Delivery) are PostgreSQL's; SQLite builds
# the same index without them, which is all the warning says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]


def _metrics_dir(database: dict) -> str:
    """A folder per user and database under the temp dir: the processes of one hub on
    one machine share it, two hubs do not."""
    key = hashlib.sha256(f"{database.get('HOST')}/{database['NAME']}".encode()).hexdigest()
    return str(Path(tempfile.gettempdir()) / f"webhookhub-metrics-{os.getuid()}-{key[:16]}")


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.EmailOrUsernameBackend",
]
# Failed logins (site and admin) are throttled per account and per client address:
# after LOGIN_FAILURE_LIMIT failures either is paused for LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "accounts.throttle.login_name"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:settings"
LOGOUT_REDIRECT_URL = "accounts:login"
# Users' notification webhooks (Open WebUI's user webhook); the admin can override.
ENABLE_USER_WEBHOOKS = env.bool("ENABLE_USER_WEBHOOKS", default=True)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Uploaded files (namespace images and objects): never served as static files, only
# through the namespace's download page, to its members.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
NAMESPACE_FILE_LIMIT = env.int("NAMESPACE_FILE_LIMIT", default=50 * 1024 * 1024)
# All of one namespace's images and objects together (0: no quota); namespaces/uploads.py.
NAMESPACE_STORAGE_QUOTA = env.int("NAMESPACE_STORAGE_QUOTA", default=1024 * 1024 * 1024)
# Invites one user may send in an hour, over all their namespaces (docs/namespaces.md).
INVITE_LIMIT_PER_HOUR = env.int("INVITE_LIMIT_PER_HOUR", default=10)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="webhookhub.mail.ConsoleEmailBackend")

# The console: quiet by default (warnings, errors, one line per start and stop); VERBOSE
# adds what is routine (each failed attempt, which a retry usually mends; django-q2's).
VERBOSE = env.bool("VERBOSE", default=False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"without_debug": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # With DEBUG on, Django prints these itself.
        "errors": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["without_debug"],
            "level": "ERROR",
        },
    },
    "loggers": {
        "hooks": {
            "handlers": ["console"],
            "level": env.str("LOG_LEVEL", default="INFO" if VERBOSE else "WARNING"),
        },
        # Unhandled errors in views, with their traceback, on stderr for the operator.
        "django.request": {"handlers": ["errors"], "level": "ERROR"},
    },
}

# --- Deployment security (docs/security.md) ---------------------------------------
# Cookies only over HTTPS: on by default when SITE_URL is https.
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=SITE_URL.startswith("https://"))
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
# Messages wait in the session, encrypted, never in a cookie: an admin's "shown this
# once" message carries a new signing secret (webhookhub/messages.py).
MESSAGE_STORAGE = "webhookhub.messages.SealedSessionStorage"
# `dumpdata` writes encrypted fields as stored (encrypted), `loaddata` reads them back
# with the same ENCRYPTION_KEYS (hooks/dumps.py); xml does so by itself.
SERIALIZATION_MODULES = {"json": "hooks.dumps", "jsonl": "hooks.dumps_jsonl"}
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
# The hub's pages load nothing from elsewhere and run no inline script; blank turns
# the header off (webhookhub.security).
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

# --- Webhook delivery: defaults are defined once, in hooks.conf (read through it,
# checked by hooks.checks); each variable set in the environment overrides its default.
WEBHOOK_ALLOWED_NETWORKS = env.list(
    "WEBHOOK_ALLOWED_NETWORKS", default=HOOKS["WEBHOOK_ALLOWED_NETWORKS"]
)
WEBHOOK_USER_ALLOWED_NETWORKS = env.list(
    "WEBHOOK_USER_ALLOWED_NETWORKS", default=HOOKS["WEBHOOK_USER_ALLOWED_NETWORKS"]
)
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=HOOKS["WEBHOOK_TIMEOUT"])
WEBHOOK_CONNECT_TIMEOUT = env.float(
    "WEBHOOK_CONNECT_TIMEOUT", default=HOOKS["WEBHOOK_CONNECT_TIMEOUT"]
)
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=float, default=HOOKS["WEBHOOK_RETRY_SCHEDULE"]
)
WEBHOOK_MAX_TIMEOUT = HOOKS["WEBHOOK_MAX_TIMEOUT"]
WEBHOOK_SEND_THREADS = env.int("WEBHOOK_SEND_THREADS", default=HOOKS["WEBHOOK_SEND_THREADS"])
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=HOOKS["WEBHOOK_BATCH_SIZE"])
WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = env.int(
    "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", default=HOOKS["WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT"]
)
WEBHOOK_PUMP_SECONDS = env.float("WEBHOOK_PUMP_SECONDS", default=HOOKS["WEBHOOK_PUMP_SECONDS"])
WEBHOOK_MAX_PAYLOAD_BYTES = env.int(
    "WEBHOOK_MAX_PAYLOAD_BYTES", default=HOOKS["WEBHOOK_MAX_PAYLOAD_BYTES"]
)
WEBHOOK_MAX_EVENT_BYTES = env.int(
    "WEBHOOK_MAX_EVENT_BYTES", default=HOOKS["WEBHOOK_MAX_EVENT_BYTES"]
)
WEBHOOK_CLAIM_LEASE = env.float("WEBHOOK_CLAIM_LEASE", default=HOOKS["WEBHOOK_CLAIM_LEASE"])
WEBHOOK_FAILING_AFTER_ATTEMPTS = env.int(
    "WEBHOOK_FAILING_AFTER_ATTEMPTS", default=HOOKS["WEBHOOK_FAILING_AFTER_ATTEMPTS"]
)
WEBHOOK_DISABLE_AFTER_DAYS = env.float(
    "WEBHOOK_DISABLE_AFTER_DAYS", default=HOOKS["WEBHOOK_DISABLE_AFTER_DAYS"]
)
WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES = env.int(
    "WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES",
    default=HOOKS["WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES"],
)
WEBHOOK_HISTORY_DAYS = env.int("WEBHOOK_HISTORY_DAYS", default=HOOKS["WEBHOOK_HISTORY_DAYS"])
WEBHOOK_BODY_RETENTION_DAYS = env.int(
    "WEBHOOK_BODY_RETENTION_DAYS", default=HOOKS["WEBHOOK_BODY_RETENTION_DAYS"]
)
WEBHOOK_FEED_SETTLE_SECONDS = env.float(
    "WEBHOOK_FEED_SETTLE_SECONDS", default=HOOKS["WEBHOOK_FEED_SETTLE_SECONDS"]
)
# The pumps' journals (hooks.worker.journal): a folder per database under it, on this
# machine's own disk (their locks are the machine's).
WEBHOOK_JOURNAL_DIR = env.str("WEBHOOK_JOURNAL_DIR", default=HOOKS["WEBHOOK_JOURNAL_DIR"])
ADMINS = [("", email) for email in env.list("ADMIN_EMAILS", default=[])]
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webhookhub@localhost")

# --- Prometheus /metrics ------------------------------------------------------
# With METRICS_TOKEN set, a scrape needs `Authorization: Bearer <METRICS_TOKEN>` (a proxy
# on the same machine would make any peer a loopback one); unset, it must come from an
# address in METRICS_ALLOWED_NETWORKS. Worker counters live in one folder per machine
# (prometheus-client's multiprocess mode); every process of the machine must share it,
# and runhub empties it when it starts.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
METRICS_DIR = env.str("METRICS_DIR", default="") or _metrics_dir(DATABASES["default"])
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", METRICS_DIR)
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)

# --- django-q2 -----------------------------------------------------------
# A pump task claims due deliveries for up to WEBHOOK_PUMP_SECONDS, then lets what it
# has in flight land (each request at most WEBHOOK_MAX_TIMEOUT); the sweeper task
# loops for under a minute. `retry` (the broker's visibility timeout) must exceed what
# a task can wait in the cluster's local queue plus its own run time, or it runs twice.
REDIS_URL = env.str("REDIS_URL", default="")
Q_WORKERS = env.int("Q_WORKERS", default=4)
Q_TASK_TIMEOUT = int(WEBHOOK_MAX_TIMEOUT + WEBHOOK_PUMP_SECONDS) + 60
Q_CLUSTER = {
    "name": "webhookhub",
    "workers": Q_WORKERS,
    "queue_limit": Q_WORKERS,
    "timeout": Q_TASK_TIMEOUT,
    "retry": Q_TASK_TIMEOUT * 2 + 60,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "label": "Task queue",
    "log_level": "INFO" if VERBOSE else "WARNING",
}
# Jobs run in a cluster of their own (`manage.py runjobs`), so long jobs never delay a
# delivery. Handlers are stopped by the runner at their executionTimeout (up to 7
# days); the broker timeouts only need to stay out of its way.
JOB_WORKERS = env.int("JOB_WORKERS", default=2)
# Events one API token may post a minute to /api/v1/events (api/ratelimit.py; 0: no
# limit), counted in Redis when REDIS_URL is set, else in the database.
INGEST_RATE_LIMIT = env.int("INGEST_RATE_LIMIT", default=600)
# runsync long polls waiting at once per web process, and per user (jobs.waiters): the
# process's other threads stay free for pages and the rest of the API.
RUNSYNC_WAITERS = env.int("RUNSYNC_WAITERS", default=2)
RUNSYNC_WAITERS_PER_USER = env.int("RUNSYNC_WAITERS_PER_USER", default=1)
# Seconds before each attempt of a job's callback: by default RunPod's two retries 10 s
# apart, then the hub's schedule; "0,10,10" is RunPod's exact policy (3 attempts).
JOB_CALLBACK_SCHEDULE = env.list(
    "JOB_CALLBACK_SCHEDULE",
    cast=float,
    default=[0, 10, 10, *HOOKS["WEBHOOK_RETRY_SCHEDULE"][2:]],
)
# Route webhooks (APIO): request and response bodies in a route event's payload are
# cut at this many bytes.
ROUTE_BODY_LIMIT = env.int("ROUTE_BODY_LIMIT", default=16 * 1024)
# HTML bodies in a route event's payload: off (a placeholder says it was left out), as a
# page shows what its forms and resources hold (a job's input, a variable's value).
ROUTE_HTML_BODIES = env.bool("ROUTE_HTML_BODIES", default=False)
# Seconds a finished job's result is kept (RunPod: 30 minutes for /run, 1 minute for
# /runsync); after that its status answers 404 and the jobs sweeper deletes it.
JOB_RESULT_TTL = env.int("JOB_RESULT_TTL", default=1800)
JOB_RESULT_TTL_SYNC = env.int("JOB_RESULT_TTL_SYNC", default=60)
# RunPod's payload limits: the largest input a /run (a /runsync) job takes, in bytes of
# its JSON, and the largest output (and streamed chunk) it may return; its callback
# carries both, the whole status JSON.
JOB_PAYLOAD_LIMIT = env.int("JOB_PAYLOAD_LIMIT", default=10 * 1024 * 1024)
JOB_PAYLOAD_LIMIT_SYNC = env.int("JOB_PAYLOAD_LIMIT_SYNC", default=20 * 1024 * 1024)
# Remote RunPod workers: how long an empty job-take is held open (RunPod's take is a
# long poll), and how long a worker may go unseen before its jobs go back to the queue.
JOB_TAKE_WAIT = env.float("JOB_TAKE_WAIT", default=10.0)
JOB_TAKE_HOLDERS = env.int("JOB_TAKE_HOLDERS", default=2)  # held at once per web process
JOB_REMOTE_WORKER_LOST = env.int("JOB_REMOTE_WORKER_LOST", default=30)
JOB_REMOTE_REQUEUES = env.int("JOB_REMOTE_REQUEUES", default=3)  # then a lost worker fails it
JOB_TASK_TIMEOUT = 7 * 24 * 3600 + 600
Q_CLUSTER["ALT_CLUSTERS"] = {
    "jobs": {
        "workers": JOB_WORKERS,
        "queue_limit": JOB_WORKERS,
        "timeout": JOB_TASK_TIMEOUT,
        "retry": JOB_TASK_TIMEOUT + 600,
    }
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # The database broker, woken on commit (hooks.worker.wakeup); the poll is its backstop.
    Q_CLUSTER["broker_class"] = "hooks.worker.wakeup.WakeableORM"
    Q_CLUSTER["poll"] = env.float("Q_POLL", default=0.2)
