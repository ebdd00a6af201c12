"""Pages for areas of the product that have not been built yet.

The navigation lists every area of the product; until an area lands, its
page says so plainly instead of answering 404.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .roles import requires


def not_yet_page(title: str, summary: str):
    @requires("read")
    def view(request: HttpRequest) -> HttpResponse:
        return render(request, "opsconsole/not_yet.html", {"title": title, "summary": summary})

    return view
