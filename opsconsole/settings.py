"""Ops Console settings, read from the environment (twelve-factor).

Every variable read here is listed, with its default, in README.md
("Configuration"). A bad value fails loudly at start-up instead of being
silently replaced by a default.
"""

import os
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

import opsconsole.cachesettings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

VERSION = "0.1.0"

DEBUG = env.bool("DEBUG", default=False)

# The default key exists so that `make run` works on a fresh clone. Anything
# that is not DEBUG is production and must bring its own key.
INSECURE_DEFAULT_SECRET_KEY = "insecure-development-key-change-me-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
# Django's own rule (security.W009), enforced at start-up rather than only by
# `check --deploy`: a short or repetitive key lets anyone forge sessions,
# password-reset links and signed values.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
if not DEBUG:
    if SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY is the built-in development key. Set SECRET_KEY to a long random "
            "value (or DEBUG=true for local development)."
        )
    if (
        len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
        or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or SECRET_KEY.startswith("django-insecure-")
    ):
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, and no 'django-insecure-' prefix. "
            "Generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "opsconsole",
    "notifications",
    "incidents",
    "runbooks",
    "checklists",
    "healthchecks",
    "oncall",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]

MIDDLEWARE = [
    "opsconsole.middleware.RequestIdMiddleware",
    "opsconsole.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: refuses NUL characters and oversized bodies before anything reads them.
    "opsconsole.badinput.InputGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the user read in the session's statement (opsconsole/sessions.py).
    "opsconsole.middleware.AuthenticationMiddleware",
    "opsconsole.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "opsconsole.urls"
WSGI_APPLICATION = "opsconsole.wsgi.application"

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
                "opsconsole.context_processors.console",
            ],
        },
    },
]

# --- Database (no DATABASE_URL: SQLite in var/, so that `make run` needs no server) ---
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'opsconsole.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share one file: take the write lock up front and
    # wait for it instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif env.int("DATABASE_POOL_MAX_SIZE", default=4) > 0:  # a bounded pool per process (opsconsole.dbpool)
    import opsconsole.dbpool

    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = opsconsole.dbpool.pool_options(env)
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not
else:  # DATABASE_POOL_MAX_SIZE=0: one persistent connection per thread
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUDIT_STREAMS = env.int("AUDIT_STREAMS", default=8)  # the audit log's hash chains (opsconsole.audit)

# --- Redis, cache and Celery ---------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Cache aliases "default" (fails open) and "live" (strict): opsconsole/cachesettings.py.
CACHES = opsconsole.cachesettings.caches(REDIS_URL)

# An empty CELERY_BROKER_URL means "not set": fall back to Redis, then to files.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://localhost//"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Brokerless development transport: messages are files in var/celery,
    # shared by the web process, the worker and beat.
    _CELERY_DIR = VAR_DIR / "celery"
    (_CELERY_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_CELERY_DIR),
        "data_folder_out": str(_CELERY_DIR),
        "processed_folder": str(_CELERY_DIR / "processed"),
        "store_processed": False,
        # kombu's default is ./control relative to the working directory.
        "control_folder": str(_CELERY_DIR / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
# Task routes and the beat schedule: one table, at the end of this file.

# --- Health checks (docs/healthchecks.md) ----------------------------------
HEALTHCHECK_RAW_RETENTION_DAYS = env.int("HEALTHCHECK_RAW_RETENTION_DAYS", default=7)
HEALTHCHECK_ROLLUP_RETENTION_DAYS = env.int("HEALTHCHECK_ROLLUP_RETENTION_DAYS", default=400)
HEALTHCHECK_DISPATCH_SECONDS = env.float("HEALTHCHECK_DISPATCH_SECONDS", default=5.0)
HEALTHCHECK_BATCH_SIZE = env.int("HEALTHCHECK_BATCH_SIZE", default=500)
HEALTHCHECK_DISPATCH_LIMIT = env.int("HEALTHCHECK_DISPATCH_LIMIT", default=20000)
HEALTHCHECK_CONCURRENCY = env.int("HEALTHCHECK_CONCURRENCY", default=500)
HEALTHCHECK_LEASE_MARGIN_SECONDS = env.int("HEALTHCHECK_LEASE_MARGIN_SECONDS", default=30)
HEALTHCHECK_DEFAULT_QUEUE = env.str("HEALTHCHECK_DEFAULT_QUEUE", default="default")
# Probe target policy (docs/healthchecks.md): networks no probe may connect
# to, checked after DNS resolution. CIDRs or the names link-local, metadata,
# loopback, private; validated by the healthchecks app at start-up.
HEALTHCHECK_DENY_NETWORKS = env.list("HEALTHCHECK_DENY_NETWORKS", default=["link-local", "metadata"])
# The only directory whose files a check may name (CA bundles, kubeconfigs);
# empty: none, checks paste the content instead.
HEALTHCHECK_FILES_DIR = env.str("HEALTHCHECK_FILES_DIR", default="")
if HEALTHCHECK_BATCH_SIZE < 1 or HEALTHCHECK_CONCURRENCY < 1 or HEALTHCHECK_RAW_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("HEALTHCHECK_BATCH_SIZE, _CONCURRENCY and _RAW_RETENTION_DAYS must be at least 1.")

# --- Authentication (django-allauth) --------------------------------------
AUTH_USER_MODEL = "opsconsole.User"
# Django's and allauth's backends, loading the user's roles in the user's own query (auth_backends.py).
AUTHENTICATION_BACKENDS = [f"opsconsole.auth_backends.{name}" for name in ("RolesModelBackend", "RolesAllauthBackend")]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "opsconsole.auth.AccountAdapter"
ACCOUNT_FORMS = {"login": "opsconsole.forms.LoginForm"}
SOCIALACCOUNT_ADAPTER = "opsconsole.auth.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# One address per account, unique across accounts, and a new one replaces the
# old only once the link sent to it is followed (allauth's change-email flow):
# nobody can claim someone else's address. Sign-in itself does not wait for
# verification ("optional"): accounts made by an admin keep working.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_MAX_EMAIL_ADDRESSES = 2
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_RATE_LIMITS = {
    # Thirty wrong passwords per address in five minutes, then that address
    # is refused for a while. Deliberately no per-account ("key") limit here:
    # that would let anyone lock an account out. Accounts are slowed down
    # instead (opsconsole.signin_throttle, docs/security.md).
    "login_failed": env.str("LOGIN_FAILED_RATE_LIMIT", default="30/5m/ip"),
}
# Per-account slow-down: after this many failures, one attempt per delay,
# the delay doubling per failure from 1 s up to the maximum.
LOGIN_SLOWDOWN_AFTER = env.int("LOGIN_SLOWDOWN_AFTER", default=5)
LOGIN_SLOWDOWN_MAX_DELAY_SECONDS = env.int("LOGIN_SLOWDOWN_MAX_DELAY_SECONDS", default=60)
LOGIN_SLOWDOWN_WINDOW_SECONDS = env.int("LOGIN_SLOWDOWN_WINDOW_SECONDS", default=900)
if LOGIN_SLOWDOWN_AFTER < 1 or LOGIN_SLOWDOWN_MAX_DELAY_SECONDS < 1 or LOGIN_SLOWDOWN_WINDOW_SECONDS < 1:
    raise ImproperlyConfigured("LOGIN_SLOWDOWN_AFTER, _MAX_DELAY_SECONDS and _WINDOW_SECONDS must be at least 1.")
if "/key" in ACCOUNT_RATE_LIMITS["login_failed"]:
    raise ImproperlyConfigured(
        "LOGIN_FAILED_RATE_LIMIT must not limit per account (/key): that locks accounts out. "
        "Use LOGIN_SLOWDOWN_* for accounts."
    )
OPEN_SIGNUP = env.bool("OPEN_SIGNUP", default=False)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Ops Console"
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_PROVIDERS: dict = {}
OIDC_SERVER_URL = env.str("OIDC_SERVER_URL", default="")
if OIDC_SERVER_URL:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": env.str("OIDC_PROVIDER_ID", default="sso"),
                "name": env.str("OIDC_NAME", default="Single sign-on"),
                "client_id": env.str("OIDC_CLIENT_ID"),
                "secret": env.str("OIDC_CLIENT_SECRET"),
                "settings": {"server_url": OIDC_SERVER_URL},
            }
        ]
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email ----------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Ops Console <opsconsole@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Outbound notifications (the notifications app, docs/notifications.md)
# Slack-compatible incoming webhook used when a service has no webhook of its
# own; empty: no webhook.
NOTIFY_WEBHOOK_URL = env.str("NOTIFY_WEBHOOK_URL", default="")
# Attempts per delivery (first try included) before it becomes a dead letter.
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=5)
# Backoff before retry n is NOTIFY_BACKOFF_SECONDS * 2**(n-1), capped at one hour.
NOTIFY_BACKOFF_SECONDS = env.float("NOTIFY_BACKOFF_SECONDS", default=30.0)
NOTIFY_TIMEOUT_SECONDS = env.float("NOTIFY_TIMEOUT_SECONDS", default=10.0)
if NOTIFY_MAX_ATTEMPTS < 1 or NOTIFY_BACKOFF_SECONDS < 0 or NOTIFY_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "NOTIFY_MAX_ATTEMPTS must be >= 1, NOTIFY_BACKOFF_SECONDS >= 0, NOTIFY_TIMEOUT_SECONDS > 0."
    )
# Absolute links in notifications start with this.
CONSOLE_BASE_URL = env.str("CONSOLE_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Internationalisation -------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve straight from the app and project folders: no collectstatic step
# is needed for `make run` or the test servers.
WHITENOISE_USE_FINDERS = True

# --- Security -------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Probes and Prometheus talk to the container directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^healthz$", r"^metrics$"]
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_ENGINE = "opsconsole.sessions"  # database sessions, read with their user in one fixed statement
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

_SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF],
        "img-src": [_SELF, "data:"],
        "connect-src": [_SELF],
        "font-src": [_SELF],
        "object-src": ["'none'"],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": ["'none'"],
    }
}

# --- Observability --------------------------------------------------------
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# Other processes' sample directories to merge into /metrics (comma-separated).
PROMETHEUS_MERGE_DIRS = env.list("PROMETHEUS_MERGE_DIRS", default=[])
if not PROMETHEUS_MULTIPROC_DIR:
    # prometheus-client switches to multiprocess mode when the variable merely
    # exists: an empty value would scatter counter_<pid>.db files in the cwd.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
else:
    # A pod's emptyDir starts empty: the folder must exist before a sample is written.
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# A Celery worker serves its task counters on this port (/metrics) when set:
# on Kubernetes each worker pod is scraped itself (no shared metrics volume).
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=0)
# The watchdog (opsconsole/watchdog.py) reports work that should have happened
# this many minutes ago and did not (escalations, checklist slots, probes).
WATCHDOG_GRACE_MINUTES = env.int("WATCHDOG_GRACE_MINUTES", default=5)
# manage.py backup_database: where dumps go, and how long they are kept.
BACKUP_DIR = env.str("BACKUP_DIR", default=str(VAR_DIR / "backups"))
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=30)
if WATCHDOG_GRACE_MINUTES < 1 or BACKUP_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("WATCHDOG_GRACE_MINUTES and BACKUP_RETENTION_DAYS must be at least 1.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "opsconsole.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "opsconsole.logging.JsonFormatter",
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Request logs would double the access log without adding context.
        "django.server": {"level": "WARNING"},
        # Django's default config also prints its events as plain text to the
        # console in DEBUG: one JSON line per event, through the root handler.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Incidents --------------------------------------------------------------
# SEV for alerts whose `severity` label has no mapping (Incidents → Alert mappings).
ALERT_DEFAULT_SEVERITY = env.int("ALERT_DEFAULT_SEVERITY", default=3)
if ALERT_DEFAULT_SEVERITY not in (1, 2, 3, 4):
    raise ImproperlyConfigured("ALERT_DEFAULT_SEVERITY must be 1, 2, 3 or 4.")
# An acknowledged incident quiet for this long reminds its commander.
INCIDENT_NUDGE_MINUTES = env.int("INCIDENT_NUDGE_MINUTES", default=30)
if INCIDENT_NUDGE_MINUTES < 1:
    raise ImproperlyConfigured("INCIDENT_NUDGE_MINUTES must be at least 1.")

# --- Runbooks and remediation (docs/runbooks.md) ----------------------------
# Allowlists of what actions may touch; shell-style patterns, comma-separated.
# Empty means nothing: an action on a target not listed is refused.
RUNBOOK_ALLOWED_NAMESPACES = env.list("RUNBOOK_ALLOWED_NAMESPACES", default=[])
RUNBOOK_ALLOWED_DEPLOYMENTS = env.list("RUNBOOK_ALLOWED_DEPLOYMENTS", default=[])  # "namespace/name" patterns
RUNBOOK_ALLOWED_HOSTS = env.list("RUNBOOK_ALLOWED_HOSTS", default=[])  # "host" or "host:port" patterns
RUNBOOK_ALLOWED_QUEUES = env.list("RUNBOOK_ALLOWED_QUEUES", default=[])  # Redis keys
RUNBOOK_KUBECONFIG = env.str("RUNBOOK_KUBECONFIG", default="")  # empty: the in-cluster service account
RUNBOOK_KUBE_CONTEXT = env.str("RUNBOOK_KUBE_CONTEXT", default="")
RUNBOOK_REDIS_URL = env.str("RUNBOOK_REDIS_URL", default="")  # the monitored application's Redis
RUNBOOK_ACTION_TIMEOUT_SECONDS = env.int("RUNBOOK_ACTION_TIMEOUT_SECONDS", default=30)
RUNBOOK_VERIFY_SETTLE_SECONDS = env.int("RUNBOOK_VERIFY_SETTLE_SECONDS", default=60)
RUNBOOK_IMPORT_MAX_BYTES = env.int("RUNBOOK_IMPORT_MAX_BYTES", default=5_000_000)
if RUNBOOK_ACTION_TIMEOUT_SECONDS < 1 or RUNBOOK_VERIFY_SETTLE_SECONDS < 0:
    raise ImproperlyConfigured("RUNBOOK_ACTION_TIMEOUT_SECONDS must be at least 1, _VERIFY_SETTLE_SECONDS at least 0.")

# Demo data (manage.py seed_demo) gives every demo user this password.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="opsconsole-demo")

# Post-incident reviews are due this many business days (Mon–Fri) after the
# review is created (when a SEV-1/2 incident is resolved).
REVIEW_DUE_BUSINESS_DAYS = env.int("REVIEW_DUE_BUSINESS_DAYS", default=5)
if not 1 <= REVIEW_DUE_BUSINESS_DAYS <= 60:
    raise ImproperlyConfigured("REVIEW_DUE_BUSINESS_DAYS must be between 1 and 60.")

# --- Celery: every task's route and every beat entry, in one table -----------
# Every task must have a route (tests/test_celery_routes.py checks it, and that
# the Procfile/compose worker consumes every routed queue); every beat entry
# must name a real task. An app adds its rows here, nowhere else.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    # Outbound notifications have their own queue so that a slow webhook
    # never delays probes or checklist runs (and the other way round).
    "notifications.tasks.*": {"queue": "notifications"},
    "opsconsole.tasks.*": {"queue": "default"},
    "checklists.tasks.*": {"queue": "default"},
    "healthchecks.tasks.*": {"queue": "default"},
    "incidents.tasks.*": {"queue": "default"},
    # Remediation (runbook actions against Kubernetes, HTTP, Redis) has its
    # own queue: on Kubernetes only its worker holds an API token (deploy/kubernetes).
    "runbooks.tasks.*": {"queue": "remediation"},
    "oncall.tasks.*": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Daily, off-peak: the audit log's hash chain is verified and the result
    # logged and exported (audit_chain_intact) so that an alert can fire.
    "verify-audit-chain": {"task": "opsconsole.tasks.verify_audit_chain", "schedule": crontab(hour=3, minute=17)},
    "requeue-stale-deliveries": {"task": "notifications.tasks.requeue_stale_deliveries", "schedule": 60.0},
    # Checklists: create each schedule slot's run, mark overdue runs missed,
    # tick items whose health check now passes. All idempotent.
    "checklists-create-due-runs": {"task": "checklists.tasks.create_due_runs", "schedule": 60.0},
    "checklists-mark-missed-runs": {"task": "checklists.tasks.mark_missed_runs", "schedule": 60.0},
    "checklists-refresh-automatic-items": {"task": "checklists.tasks.refresh_automatic_items", "schedule": 60.0},
    # Health checks: claim and queue due checks; an unclaimed dispatch expires
    # rather than piling up behind a slow worker.
    "healthchecks-dispatch": {
        "task": "healthchecks.tasks.dispatch_due_checks",
        "schedule": HEALTHCHECK_DISPATCH_SECONDS,
        "options": {"expires": HEALTHCHECK_DISPATCH_SECONDS * 2},
    },
    "healthchecks-prune": {"task": "healthchecks.tasks.prune_results", "schedule": 3600.0},
    "incidents-nudges": {"task": "incidents.tasks.send_nudges", "schedule": 60.0},
    # On-call: page escalation levels that fell due (each once), shift reminders
    # (each once), and keep the computed schedule materialised to its horizon.
    "oncall-escalate": {"task": "oncall.tasks.escalate_due", "schedule": 30.0},
    "oncall-reminders": {"task": "oncall.tasks.send_reminders", "schedule": 60.0},
    "oncall-materialise": {"task": "oncall.tasks.materialise_schedules", "schedule": 3600.0},
    # Core: report escalations, checklist slots and probes that should have
    # happened and did not (opsconsole/watchdog.py; /healthz, /metrics, audit).
    "watchdog": {"task": "opsconsole.tasks.run_watchdog", "schedule": 60.0},
}

# --- On-call (docs/oncall.md) ---------------------------------------------------
# Days of computed shifts kept in the database ahead of now (calendar, feeds, reminders).
ONCALL_SCHEDULE_DAYS = env.int("ONCALL_SCHEDULE_DAYS", default=56)
# Reminders before a shift starts: comma-separated durations (m, h or d).
ONCALL_REMINDER_OFFSETS = env.list("ONCALL_REMINDER_OFFSETS", default=["1d", "1h"])
# A submitted handoff nobody acknowledged for this long is flagged on the dashboard.
ONCALL_HANDOFF_ACK_MINUTES = env.int("ONCALL_HANDOFF_ACK_MINUTES", default=30)
# An escalation step sent this long after it was due is marked late (beat was down).
ONCALL_ESCALATION_LATE_SECONDS = env.int("ONCALL_ESCALATION_LATE_SECONDS", default=120)


def _duration_minutes(text: str) -> int:
    units = {"m": 1, "h": 60, "d": 24 * 60}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ImproperlyConfigured(f"ONCALL_REMINDER_OFFSETS: {text!r} is not a duration like 30m, 1h or 1d.")
    return int(text[:-1]) * units[text[-1]]


ONCALL_REMINDER_MINUTES = sorted({_duration_minutes(item) for item in ONCALL_REMINDER_OFFSETS}, reverse=True)
if ONCALL_SCHEDULE_DAYS < 7 or ONCALL_HANDOFF_ACK_MINUTES < 1 or ONCALL_ESCALATION_LATE_SECONDS < 1:
    raise ImproperlyConfigured(
        "ONCALL_SCHEDULE_DAYS must be at least 7; ONCALL_HANDOFF_ACK_MINUTES and "
        "ONCALL_ESCALATION_LATE_SECONDS at least 1."
    )
