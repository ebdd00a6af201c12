"""Request typing shared by the views."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """The request as a view sees it: HtmxMiddleware adds `request.htmx`; naming
    it here lets editors and type checkers follow `request.htmx.target` & co."""

    htmx: HtmxDetails
