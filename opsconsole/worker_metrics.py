"""A Celery worker's own /metrics (CELERY_METRICS_PORT), for deployments
where the worker shares no folder with the web process (Kubernetes: one pod
each). It exports what this worker's processes counted (celery_tasks_total,
task durations, audit_chain_intact), merged from the pool's sample files,
and nothing read from the database: the web pods export that, once.
METRICS_TOKEN protects it as it protects the web's /metrics."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from prometheus_client import CollectorRegistry, make_wsgi_app

from . import metrics

logger = logging.getLogger(__name__)


def registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry.register(metrics._MultiprocessFiles([os.environ["PROMETHEUS_MULTIPROC_DIR"]]))
    else:
        registry.register(metrics._ThisProcess())
    return registry


def application():
    exporter = make_wsgi_app(registry())

    def app(environ, start_response):
        token = settings.METRICS_TOKEN
        if token:
            scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
                return [b"metrics need a bearer token\n"]
        return exporter(environ, start_response)

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def serve(port: int, host: str = "0.0.0.0") -> WSGIServer:  # nosec B104  # the pod's port, scraped in-cluster
    server = make_server(host, port, application(), WSGIServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("worker metrics on :%s/metrics", port)
    return server
