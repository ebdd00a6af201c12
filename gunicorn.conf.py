"""gunicorn settings for Ops Console (docker-compose `web`, or
`gunicorn -c gunicorn.conf.py`). Everything is overridable from the
environment: PORT, HOST, WEB_CONCURRENCY, WEB_THREADS, WEB_TIMEOUT,
PROMETHEUS_MULTIPROC_DIR.

Several worker processes each count their own requests, so /metrics runs
prometheus-client in multiprocess mode: every process writes its samples to
files in PROMETHEUS_MULTIPROC_DIR and a scrape (by any worker) merges them.
"""

import os
import shutil
from pathlib import Path

wsgi_app = "opsconsole.wsgi:application"
# A container listens on all its interfaces; HOST narrows it on a shared host.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # nosec B104  # container port
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
# gunicorn >= 24's control socket (~/.gunicorn/gunicorn.ctl) is one path per
# user: several consoles (or test runs) on a host would fight over it.
control_socket_disable = True
# Behind a reverse proxy that sets X-Forwarded-*: trust it (see TRUST_X_FORWARDED_PROTO).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# The directory must be set before any worker imports prometheus_client, so
# it is decided here, in the master, and inherited by the workers.
_default_dir = Path(__file__).resolve().parent / "var" / "prometheus-multiproc"
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_default_dir))

# One JSON line per event, like the application's own logs; the access log
# carries the X-Request-ID the middleware echoed in the response.
access_log_format = "%(m)s %(U)s %(s)s"
# Builds only the fields that line uses (opsconsole/gunicorn_logging.py).
logger_class = "opsconsole.gunicorn_logging.ConsoleLogger"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "opsconsole.logging.JsonFormatter"}},
    "filters": {"access": {"()": "opsconsole.logging.GunicornAccessFilter"}},
    "handlers": {
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["access"],
            "stream": "ext://sys.stdout",
        },
    },
    # gunicorn merges this into its defaults, whose root logger names a
    # "console" handler: replace it with ours.
    "root": {"handlers": ["error"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def on_starting(server) -> None:
    """Master start: an empty metrics directory. Files left by a previous run
    would otherwise be merged into this run's counters."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def post_worker_init(worker) -> None:
    """The worker has loaded the console: load the URLs and views too and
    freeze what is alive now, so that garbage collections during requests
    do not walk it (opsconsole/startup.py)."""
    from opsconsole.startup import freeze_startup_objects

    freeze_startup_objects()


def child_exit(server, worker) -> None:
    """A worker died or was recycled: drop its live gauges (counters stay, so
    totals never go backwards)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
