"""An Alertmanager delivery's timeline entry: its Markdown and its HTML are
composed together (parsing the generated list back cost 3 ms a delivery).
The HTML must be what the Markdown renders to, and label values from the
payload must show as text, never as markup."""

import pytest

from incidents.alerts import LISTED_ALERTS, _alert_list, ingest, parse
from incidents.models import TimelineEvent
from incidents.services import render_markdown

pytestmark = pytest.mark.django_db


def _delivery(group: str, summaries: list[str], status: str = "firing", severity: str = "high") -> dict:
    return {
        "version": "4",
        "groupKey": f"{{}}:{{alertname={group!r}}}",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": group, "severity": severity, "instance": f"node-{n}"},
                "annotations": {"summary": summary} if summary else {},
                "startsAt": "2026-11-30T10:00:00Z",
                "endsAt": "2026-11-30T10:05:00Z" if status == "resolved" else "",
                "fingerprint": f"{group}-{n}",
            }
            for n, summary in enumerate(summaries)
        ],
    }


def _alert_events(group: str) -> list[TimelineEvent]:
    return list(TimelineEvent.objects.filter(incident__title=group, kind="alert").order_by("id"))


def test_the_composed_html_is_what_the_markdown_renders_to():
    summaries = ["queue depth > 5000", "", "disk 91% full (it's /var)", 'lag "replica-2" 30 s']
    ingest(parse(_delivery("QueueBacklog", summaries)))
    ingest(parse(_delivery("QueueBacklog", summaries, "resolved")))
    firing, resolved = _alert_events("QueueBacklog")
    for event in (firing, resolved):
        assert event.html == render_markdown(event.text)
    assert firing.text.startswith("**Firing:** 4 alert(s) firing:\n\n- `QueueBacklog` (high) — queue depth > 5000")
    assert "<li><code>QueueBacklog</code> (high) [node-1]</li>" in firing.html


def test_a_higher_source_severity_note_matches_too():
    ingest(parse(_delivery("DiskFull", ["disk 80%"], severity="low")))
    body = _delivery("DiskFull", ["disk 99%"], severity="critical")
    body["alerts"][0]["fingerprint"] = "DiskFull-later"
    ingest(parse(body))
    later = _alert_events("DiskFull")[-1]
    assert "The source reports SEV-1, higher than the incident's SEV-4." in later.text
    assert later.html == render_markdown(later.text)


def test_label_values_show_as_written_never_as_markup():
    hostile = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "**bold** [link](javascript:alert(1))"]
    ingest(parse(_delivery("Hostile<b>", hostile)))
    (event,) = _alert_events("Hostile<b>")
    assert "<script" not in event.html and "<img" not in event.html and "<b>" not in event.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in event.html
    assert "<code>Hostile&lt;b&gt;</code>" in event.html
    # Markdown in a summary stays literal: no link, no emphasis.
    assert "**bold** [link](javascript:alert(1))" in event.html and "<a " not in event.html


def test_a_long_list_is_cut_in_both_forms():
    text, html = _alert_list("120 alert(s) firing:", parse(_delivery("Many", ["x"] * 120)).alerts)
    assert text.count("\n- ") == LISTED_ALERTS + 1 and text.endswith("- … and 70 more")
    assert html.count("<li>") == LISTED_ALERTS + 1 and html.endswith("<li>… and 70 more</li>\n</ul>")
    assert html == render_markdown(text)
