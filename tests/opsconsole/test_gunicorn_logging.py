"""gunicorn's access line built from the six fields it uses (opsconsole/gunicorn_logging.py)."""

import datetime
import io
import json
import logging
import os
import runpy
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from django.conf import settings
from gunicorn.config import Config
from gunicorn.glogging import Logger

from opsconsole.gunicorn_logging import ACCESS_LOG_FORMAT, ConsoleLogger

RESPONSE = SimpleNamespace(
    status="200 OK",
    sent=12,
    headers=[("Content-Type", "text/html"), ("X-Request-ID", "0123456789abcdef0123456789abcdef"), ("Vary", "Cookie")],
)
REQUEST = SimpleNamespace(headers=[("HOST", "127.0.0.1"), ("HX-REQUEST", "true")])
ENVIRON = {
    "REMOTE_ADDR": "10.1.2.3",
    "REQUEST_METHOD": "POST",
    "RAW_URI": "/checklists/runs/1/items/2/tick/?x=1",
    "PATH_INFO": "/checklists/runs/1/items/2/tick/",
    "QUERY_STRING": "x=1",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_USER_AGENT": "browser",
}


def _access_line(logger_class, access_log_format=None) -> dict:
    with mock.patch.dict(os.environ):  # the config sets PROMETHEUS_MULTIPROC_DIR for gunicorn
        conf = runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("logconfig_dict", conf["logconfig_dict"])
    cfg.set("access_log_format", access_log_format or conf["access_log_format"])
    logger = logger_class(cfg)
    stream = io.StringIO()
    handler = logging.getLogger("gunicorn.access").handlers[0]
    handler.setStream(stream)
    logger.access(RESPONSE, REQUEST, ENVIRON, datetime.timedelta(seconds=1, microseconds=2500))
    line = json.loads(stream.getvalue())
    del line["timestamp"]
    return line


def test_the_console_logger_writes_gunicorns_access_line():
    conf_format = runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))["access_log_format"]
    assert conf_format == ACCESS_LOG_FORMAT
    assert runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))["logger_class"].endswith("ConsoleLogger")
    ours = _access_line(ConsoleLogger)
    assert ours == _access_line(Logger)
    assert ours == {
        "level": "INFO",
        "logger": "gunicorn.access",
        "message": "POST /checklists/runs/1/items/2/tick/ 200",
        "request_id": "0123456789abcdef0123456789abcdef",
        "user_id": None,
        "method": "POST",
        "path": "/checklists/runs/1/items/2/tick/",
        "status": 200,
        "duration_seconds": 1.0025,
        "remote_addr": "10.1.2.3",
    }


def test_another_access_format_gets_every_atom():
    line = _access_line(ConsoleLogger, access_log_format='%(m)s %(U)s %(s)s "%(a)s" %({hx-request}i)s')
    assert line["message"] == 'POST /checklists/runs/1/items/2/tick/ 200 "browser" true'
