"""The check latency chart and the checklist heatmap are drawn by opsconsole.charts:
axes with units, date labels, threshold lines, a text alternative and a CSV (issue 13)."""

import datetime
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from checklists import services as checklist_services
from checklists.models import ChecklistTemplate, TemplateItem
from healthchecks.models import Check, CheckResult
from opsconsole import charts
from opsconsole.roles import Role
from tests.healthchecks.factories import make_check

pytestmark = pytest.mark.django_db


# Mid-day: the last 24 hours then always cross midnight, in any console timezone
# within ±11 h of UTC (near midnight they could all fall on one local date).
@time_machine.travel(datetime.datetime(2026, 6, 15, 12, 0, tzinfo=datetime.UTC), tick=True)
def test_latency_chart_has_axes_units_dates_thresholds_table_and_csv(client_as, django_assert_max_num_queries):
    check = make_check(kind=Check.Kind.HTTP, name="api", warning_threshold=200, critical_threshold=800)
    start = timezone.now() - datetime.timedelta(hours=30)
    CheckResult.objects.bulk_create(
        CheckResult(check_ref=check, checked_at=start + datetime.timedelta(hours=i), state="ok", latency_ms=100 + i)
        for i in range(25)
    )
    client = client_as(Role.VIEWER)
    with django_assert_max_num_queries(12):
        body = client.get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    figure = body.split('data-testid="chart-latency"', 1)[1].split("</figure>", 1)[0]
    assert '<svg class="chart chart-line"' in figure and 'class="axis"' in figure
    assert re.search(r'class="tick"[^>]*>\d+ ms</text>', figure)  # y ticks carry the unit
    assert re.search(r'class="tick"[^>]*>\d\d [A-Z][a-z]{2} \d\d:\d\d</text>', figure)  # dates: points span 2 days
    # The warning line is near the data and drawn; the critical one would flatten it, so it is named above.
    assert "warning 200 ms</text>" in figure and figure.count('class="threshold"') == 1
    assert "above the chart: critical 800 ms</text>" in figure
    assert "Numbers (text alternative)" in figure and "<td>124 ms</td>" in figure
    csv_url = reverse("healthchecks:latency_csv", args=[check.pk])
    assert f'href="{csv_url}"' in figure
    rows = b"".join(client.get(csv_url).streaming_content).decode().splitlines()
    assert rows[0] == "time,check,latency (ms)" and len(rows) == 1 + 18  # the last 24 hours: hours 7…24 of the 30
    assert rows[-1].endswith(",api,124.0")


def test_value_thresholds_are_not_drawn_as_milliseconds(client_as):
    check = make_check(kind=Check.Kind.TLS, name="cert", warning_threshold=30, critical_threshold=7)
    now = timezone.now()
    CheckResult.objects.bulk_create(
        CheckResult(check_ref=check, checked_at=now - datetime.timedelta(minutes=i), state="ok", latency_ms=50)
        for i in range(3)
    )
    body = client_as(Role.VIEWER).get(reverse("healthchecks:detail", args=[check.pk])).content.decode()
    assert 'data-testid="chart-latency"' in body and 'class="threshold"' not in body


def test_checklist_heatmap_is_a_chart_with_weekdays_dates_table_and_csv(client_as, make_user):
    sre = make_user(Role.SRE, username="alice")
    template = ChecklistTemplate.objects.create(name="Morning checks")
    TemplateItem.objects.create(template=template, order=0, text="Look")
    run = checklist_services.run_start(actor=sre, template=template)
    checklist_services.item_tick(actor=sre, run_id=run.pk, item_id=run.items.get().pk)
    checklist_services.run_sign_off(actor=sre, run=run)
    client = client_as(Role.VIEWER)
    body = client.get(reverse("checklists:template_history", args=[template.pk])).content.decode()
    figure = body.split('data-testid="chart-completion"', 1)[1].split("</figure>", 1)[0]
    assert '<svg class="chart heatmap"' in figure and ">Mon</text>" in figure and ">Fri</text>" in figure
    assert figure.count('data-testid="heat-day"') == 90 and 'class="hm-completed"' in figure
    assert "Numbers (text alternative)" in figure and "signed off by alice" in figure
    csv_url = reverse("checklists:template_history_csv", args=[template.pk])
    rows = b"".join(client.get(csv_url).streaming_content).decode().splitlines()
    assert rows[0] == "date,state,detail" and len(rows) == 91
    assert rows[-1].startswith(timezone.localdate().isoformat() + ",on time,")


def test_heatmap_columns_are_weeks_monday_first():
    days = [charts.HeatDay(datetime.date(2026, 11, 25) + datetime.timedelta(days=i), "none", "x") for i in range(7)]
    svg = str(charts.Heatmap("t", "T", days, [("none", "no run")]).svg(cell=10, gap=0))
    ys = [int(y) for y in re.findall(r'<rect class="hm-none" x="\d+" y="(\d+)"', svg)]
    # 25 Nov 2026 is a Wednesday: row 2; Sunday 29 is row 6, Monday 30 starts a new column at row 0.
    assert ys == [18 + 10 * r for r in (2, 3, 4, 5, 6, 0, 1)]
    assert ">25 Nov</text>" in svg and ">01 Dec</text>" in svg


def _ticks_and_left_margin(svg: str) -> tuple[list[str], int]:
    ticks = re.findall(r'<text class="tick" x="(\d+)" y="[\d.]+" text-anchor="end">([^<]*)</text>', svg)
    return [label for _, label in ticks], int(ticks[0][0]) + 4


@pytest.mark.parametrize(
    ("peak", "expected"), [(0, "0 1 2 3 4"), (3, "0 1 2 3 4"), (5, "0 2 4 6 8"), (17, "0 5 10 15 20")]
)
def test_count_charts_tick_whole_numbers(peak, expected):
    chart = charts.Chart(
        "recurrences", "R", ["a", "b"], [charts.Series("n", [0.0, float(peak)])], kind="bar", counts=True
    )
    labels, _ = _ticks_and_left_margin(str(chart.svg()))
    assert " ".join(labels) == expected


def test_tick_labels_with_a_long_unit_have_room_left_of_the_axis():
    chart = charts.Chart("ipw", "I", ["a"], [charts.Series("n", [17.0])], unit="incidents", kind="bar", counts=True)
    labels, left = _ticks_and_left_margin(str(chart.svg()))
    assert labels[-1] == "20 incidents"
    # 11px font: about 6.5 px a character; before, 56 px cut "20 incidents" to "incidents".
    assert left >= 6.5 * len("20 incidents")


def test_fractional_ticks_are_not_rounded_to_a_wrong_value():
    chart = charts.Chart("breach", "B", ["a"], [charts.Series("breached", [0.0])], unit="%")
    labels, _ = _ticks_and_left_margin(str(chart.svg()))
    assert labels == ["0%", "0.25%", "0.5%", "0.75%", "1%"]


def test_thresholds_far_above_the_data_do_not_flatten_it():
    chart = charts.Chart(
        "latency",
        "L",
        ["a", "b"],
        [charts.Series("latency", [8.0, 12.0])],
        unit="ms",
        thresholds=[charts.Threshold(500, "warning 500 ms"), charts.Threshold(2000, "critical 2000 ms")],
    )
    svg = str(chart.svg())
    labels, _ = _ticks_and_left_margin(svg)
    assert labels[-1] == "20 ms"  # the axis fits the data, not the 2,000 ms line
    assert 'class="threshold"' not in svg and "above the chart: warning 500 ms, critical 2000 ms" in svg
