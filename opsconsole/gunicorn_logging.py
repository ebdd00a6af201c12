"""gunicorn's logger, building only the access-line fields the console logs.

gunicorn's `atoms()` builds a dict of every request header, response header
and environ variable for every request, and its wrapper then lower-cases and
escapes all of them: about 60 µs of CPU per request, most of the access
log's cost, for a line that uses six values. With the console's own format
(gunicorn.conf.py) only those six are built; any other format (an operator's
`--access-logformat`) gets gunicorn's full set. No Django imports: gunicorn's
master loads this.
"""

from gunicorn.glogging import Logger

# gunicorn.conf.py's access_log_format; with opsconsole.logging.GunicornAccessFilter
# the line reads m, U, s, L, h and the response's X-Request-ID.
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s"


class ConsoleLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        if self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            return super().atoms(resp, req, environ, request_time)
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
        request_id = next((value for name, value in headers if name.lower() == "x-request-id"), "-")
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "s": status,
            "L": f"{request_time.seconds}.{request_time.microseconds:06d}",  # as gunicorn writes it
            "{x-request-id}o": request_id,
        }
