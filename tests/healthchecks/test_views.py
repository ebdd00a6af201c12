from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from healthchecks import selectors
from healthchecks.models import Check, CheckResult, MaintenanceWindow
from opsconsole.models import AuditEntry, Service
from opsconsole.roles import Role
from tests.healthchecks.factories import make_check, make_service
from tests.healthchecks.targets import HttpTarget, json_route

BOARD_QUERIES = 8  # session, user, roles, counts, services, maintenance, page count, page rows


def _many_checks(n: int) -> None:
    services = [Service.objects.create(name=f"svc {i:03}", slug=f"svc-{i:03}") for i in range(max(1, n // 100))]
    now = timezone.now()
    Check.objects.bulk_create(
        [
            Check(
                service=services[i % len(services)],
                name=f"check {i:05}",
                kind="http",
                config={"url": "http://x/"},
                state=("ok", "critical", "warning")[i % 3],
                last_checked_at=now,
                last_latency_ms=10 + i % 50,
                last_message="HTTP 200",
                recent_latencies=[float(j % 7 + i % 3) for j in range(20)],
                next_due_at=now,
            )
            for i in range(n)
        ],
        batch_size=2000,
    )


def _board_queries(client, **params) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("healthchecks:board"), params)
    assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.mark.django_db
def test_board_query_count_is_constant_and_a_page_is_bounded(client_as, django_assert_max_num_queries):
    """Same number of queries with 3 and 1,000 checks (the bench measures
    10,000); a page never holds more than BOARD_PAGE_SIZE rows."""
    client = client_as(Role.VIEWER)
    _many_checks(3)
    small, body = _board_queries(client)
    assert body.count('class="sparkline"') == 3
    assert 'aria-label="Pages"' not in body
    Check.objects.all().delete()
    Service.objects.filter(slug__startswith="svc-").delete()
    _many_checks(1000)
    with django_assert_max_num_queries(BOARD_QUERIES):
        large, body = _board_queries(client)
    assert large == small
    assert body.count('class="sparkline"') == selectors.BOARD_PAGE_SIZE
    assert "Page 1 of 10" in body and "Checks 1–100 of 1000" in body
    # Critical first: page 1 holds only critical checks (333 of them).
    assert body.count('data-state="critical"') == selectors.BOARD_PAGE_SIZE
    _, page4 = _board_queries(client, page=4)
    # 333 critical, then warning: page 4 holds the last 33 critical and 67 warning.
    assert page4.count('data-state="critical"') == 33 and page4.count('data-state="warning"') == 67
    last_count, last = _board_queries(client, page=10)
    assert last_count == small
    assert last.count('data-state="ok"') == 100 and "Page 10 of 10" in last
    with django_assert_max_num_queries(BOARD_QUERIES):
        partial = client.get(reverse("healthchecks:board"), {"state": "critical"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    text = partial.content.decode()
    assert "<html" not in text
    assert text.count('data-state="critical"') == 100 and "of 333" in text
    # The page links keep the filters.
    assert 'href="?state=critical&amp;page=2"' in text


@pytest.mark.django_db
def test_every_board_view_runs_the_same_queries(client_as, django_assert_max_num_queries):
    """Page 1, the last page, a page past the end, a search, a state, a type
    and a service filter: one page of rows each, in the same number of
    queries (the page's ids are picked in a subquery, not a query of their own)."""
    client = client_as(Role.VIEWER)
    _many_checks(1000)
    first, _ = _board_queries(client)
    views = [
        ({"page": "10"}, 100, "Checks 901–1000 of 1000"),
        ({"page": "999"}, 100, "Checks 901–1000 of 1000"),
        ({"q": "check 00042"}, 1, "Checks 1–1 of 1"),
        ({"state": "warning", "page": "4"}, 33, "Checks 301–333 of 333"),
        ({"kind": "http", "q": "svc 003"}, 100, "of 100"),
        ({"service": "svc-007", "state": "ok"}, 33, "Checks 1–33 of 33"),
    ]
    for params, rows, said in views:
        with django_assert_max_num_queries(BOARD_QUERIES):
            count, body = _board_queries(client, **params)
        assert count == first, params
        assert body.count('class="sparkline"') == rows and said in body, params
    _, last = _board_queries(client, page="10")
    # The last page is the end of the worst-first order: ok checks, by service then name.
    names = re.findall(r">(check \d+)</a>", last)
    assert len(names) == 100 and names[-1] == "check 00999"


@pytest.mark.django_db
def test_board_worst_first_across_services_and_text_search(client_as):
    calm = make_service("Alpha calm")
    burning = make_service("Zulu burning")
    make_check(calm, name="alpha ok", kind="http", config={"url": "http://x/"}, state="ok")
    make_check(burning, name="zulu down", kind="http", config={"url": "http://x/"}, state="critical")
    make_check(calm, name="alpha paused", kind="http", config={"url": "http://x/"}, state="critical", enabled=False)
    client = client_as(Role.VIEWER)
    _, body = _board_queries(client)
    # The critical check's service comes first although it sorts last by
    # name; a paused critical check comes after every enabled one.
    assert body.index("zulu down") < body.index("alpha ok") < body.index("alpha paused")
    _, found = _board_queries(client, q="BURNING")
    assert "zulu down" in found and "alpha ok" not in found
    _, found = _board_queries(client, q="paused")
    assert "alpha paused" in found and "zulu down" not in found
    _, found = _board_queries(client, q="nothing like it")
    assert "No checks match." in found
    # A page past the end shows the last page, a bad page the first: no error.
    _, past = _board_queries(client, page=99)
    assert "zulu down" in past
    _, bad = _board_queries(client, page="x")
    assert "zulu down" in bad


@pytest.mark.django_db
def test_board_filters_by_service_and_type_and_shows_maintenance(client_as):
    web = make_check(make_service("Web"), name="homepage", kind="http", config={"url": "http://x/"})
    db = make_check(make_service("Database"), name="primary", kind="postgres")
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=db.service,
        starts_at=now - datetime.timedelta(minutes=1),
        ends_at=now + datetime.timedelta(hours=1),
        reason="vacuum",
    )
    client = client_as(Role.VIEWER)
    body = client.get(reverse("healthchecks:board"), {"service": web.service.slug}).content.decode()
    assert "homepage" in body and "primary" not in body
    body = client.get(reverse("healthchecks:board"), {"kind": "postgres"}).content.decode()
    assert "primary" in body and "homepage" not in body and "in maintenance" in body


@pytest.mark.django_db
@pytest.mark.parametrize("results", [0, 300])
def test_check_page_query_count(client_as, django_assert_max_num_queries, results):
    check = make_check(kind="http", config={"url": "http://x/"})
    now = timezone.now()
    CheckResult.objects.bulk_create(
        [
            CheckResult(
                check_ref=check,
                checked_at=now - datetime.timedelta(minutes=i),
                state="ok",
                latency_ms=i,
                message=f"result {i}",
            )
            for i in range(results)
        ]
    )
    client = client_as(Role.VIEWER)
    # 9 of the page + 4 of the runbooks panel (open incident, suggested
    # runbooks, auto-remediation binding, its recent runs): constant.
    with django_assert_max_num_queries(13):
        response = client.get(reverse("healthchecks:detail", args=[check.pk]))
    assert response.status_code == 200
    assert ('class="latency-chart"' in response.content.decode()) == bool(results)


@pytest.mark.django_db
def test_create_http_check_builds_config_and_audits(client_as):
    service = make_service("Checkout API")
    client = client_as(Role.SRE)
    response = client.post(
        reverse("healthchecks:create"),
        {
            "name": "healthz",
            "service": service.pk,
            "kind": "http",
            "url": "https://checkout.example.com/healthz",
            "method": "GET",
            "headers": "X-Token: abc\nAccept: application/json",
            "expected_status": "200, 204",
            "json_path": "status",
            "json_equals": "healthy",
            "verify_tls": "on",
            "follow_redirects": "on",
            "interval_seconds": 30,
            "timeout_seconds": 5,
            "warning_threshold": 500,
            "critical_threshold": 2000,
            "consecutive_needed": 2,
            "enabled": "on",
            "host": "ignored-for-http",
        },
    )
    check = Check.objects.get(name="healthz")
    assert response.status_code == 302
    assert check.config == {
        "url": "https://checkout.example.com/healthz",
        "method": "GET",
        "headers": {"X-Token": "abc", "Accept": "application/json"},
        "expected_status": [200, 204],
        "json_path": "status",
        "json_equals": "healthy",
        "follow_redirects": True,
        "verify_tls": True,
    }
    entry = AuditEntry.objects.get(action="healthchecks.check_create")
    assert entry.after["config"]["headers"] == "***" and entry.actor_id == client.user.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"kind": "http"}, "url", "Required for a HTTP(S) check."),
        (
            {"kind": "http", "url": "ftp://x"},
            "url",
            "Enter a URL starting with http:// or https://.",
        ),
        (
            {"kind": "http", "url": "http://x", "expected_status": "abc"},
            "expected_status",
            "Enter status codes such as 200, 204.",
        ),
        (
            {"kind": "http", "url": "http://x", "headers": "no colon"},
            "headers",
            "is not a “Name: value” line.",
        ),
        ({"kind": "tcp", "host": "db"}, "port", "Required for a TCP connect check."),
        (
            {"kind": "postgres", "dsn": "postgresql://x/db", "query": "DELETE FROM users"},
            "query",
            "Only a SELECT (or WITH … SELECT) query: checks run read-only.",
        ),
        (
            {"kind": "redis", "url": "redis://x:6379/0", "redis_mode": "list"},
            "redis_key",
            "Required to measure a list's length.",
        ),
        (
            {
                "kind": "http",
                "url": "http://x",
                "warning_threshold": 900,
                "critical_threshold": 100,
            },
            "warning_threshold",
            "The warning threshold must not be above the critical one.",
        ),
        (
            {"kind": "tls", "host": "x", "warning_threshold": 7, "critical_threshold": 30},
            "warning_threshold",
            "Alerting below a value: the warning threshold must be above the critical one.",
        ),
        (
            {"kind": "http", "url": "http://x", "timeout_seconds": 90},
            "timeout_seconds",
            "The timeout must be shorter than the interval.",
        ),
    ],
)
def test_create_form_errors_per_type(client_as, data, field, message):
    service = make_service()
    client = client_as(Role.SRE)
    form = {
        "name": "x",
        "service": service.pk,
        "interval_seconds": 60,
        "timeout_seconds": 5,
        "consecutive_needed": 2,
        **data,
    }
    response = client.post(reverse("healthchecks:create"), form)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Check.objects.exists()


@pytest.mark.django_db
def test_follow_redirects_is_on_unless_unticked(client_as):
    client = client_as(Role.SRE)
    assert _follow_box(client.get(reverse("healthchecks:create"))).endswith(" checked>")
    fields = {"service": make_service().pk, "kind": "http", "url": "http://127.0.0.1:9/healthz", "method": "GET"}
    timing = {"interval_seconds": 30, "timeout_seconds": 5, "consecutive_needed": 1}
    client.post(reverse("healthchecks:create"), {"name": "no-follow", **fields, **timing})
    check = Check.objects.get(name="no-follow")
    assert check.config["follow_redirects"] is False
    assert not _follow_box(client.get(reverse("healthchecks:edit", args=[check.pk]))).endswith(" checked>")
    legacy = make_check(kind="http", config={"url": "http://127.0.0.1:9/"})  # saved before the setting existed
    assert _follow_box(client.get(reverse("healthchecks:edit", args=[legacy.pk]))).endswith(" checked>")


def _follow_box(response) -> str:
    return re.search(r'<input type="checkbox" name="follow_redirects"[^>]*>', response.content.decode()).group(0)


@pytest.mark.django_db
def test_edit_keeps_state_and_shows_the_current_config(client_as):
    check = make_check(kind="dns", config={"name": "api.internal", "expected": ["10.0.0.5"]}, state="critical")
    client = client_as(Role.SRE)
    page = client.get(reverse("healthchecks:edit", args=[check.pk])).content.decode()
    assert 'value="api.internal"' in page and 'value="10.0.0.5"' in page
    client.post(
        reverse("healthchecks:edit", args=[check.pk]),
        {
            "name": check.name,
            "service": check.service_id,
            "kind": "dns",
            "dns_name": "api.internal",
            "expected_addresses": "10.0.0.5, 10.0.0.6",
            "interval_seconds": 60,
            "timeout_seconds": 5,
            "consecutive_needed": 3,
        },
    )
    check.refresh_from_db()
    assert check.config == {"name": "api.internal", "expected": ["10.0.0.5", "10.0.0.6"]}
    assert (check.consecutive_needed, check.state) == (3, "critical")
    assert AuditEntry.objects.filter(action="healthchecks.check_update", target_id=str(check.pk)).exists()


@pytest.mark.django_db
def test_run_now_updates_the_whole_check_page(client_as, django_assert_max_num_queries):
    target = HttpTarget({"/healthz": json_route({"status": "healthy"})})
    try:
        check = make_check(
            kind="http",
            config={"url": target.url("/healthz"), "json_path": "status", "json_equals": "healthy"},
        )
        client = client_as(Role.SRE)
        response = client.post(reverse("healthchecks:run_now", args=[check.pk]), headers={"HX-Request": "true"})
    finally:
        target.close()
    body = response.content.decode()
    assert response.status_code == 200 and 'id="check-page"' in body and "<html" not in body
    assert "HTTP 200 in" in body
    # State, last result and log follow the run, not only the inline line.
    assert '<span class="badge ok">OK</span></h1>' in body and "never run" not in body
    assert "No results yet." not in body and body.count('<span class="badge ok">ok</span>') >= 2
    check.refresh_from_db()
    assert check.state == "ok" and CheckResult.objects.filter(check_ref=check).count() == 1


@pytest.mark.django_db
def test_heartbeat_ping_is_unauthenticated_and_csrf_exempt():
    check = make_check(kind="heartbeat", config={"period_seconds": 3600}, consecutive_needed=1)
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"/health/ping/{check.heartbeat_token}").content == b"ok\n"
    check.refresh_from_db()
    assert check.state == "ok"
    assert client.get(f"/health/ping/{check.heartbeat_token}/fail").content == b"fail noted\n"
    check.refresh_from_db()
    assert check.state == "critical"
    assert client.get("/health/ping/00000000-0000-0000-0000-000000000000").status_code == 404


@pytest.mark.django_db
def test_maintenance_window_create_and_end(client_as):
    service = make_service("Database")
    client = client_as(Role.SRE)
    now = timezone.now()
    bad = client.post(
        reverse("healthchecks:maintenance_create"),
        {
            "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": now.strftime("%Y-%m-%dT%H:%M"),
            "reason": "x",
        },
    )
    assert "Choose a service or a check." in bad.content.decode()
    client.post(
        reverse("healthchecks:maintenance_create"),
        {
            "service": service.pk,
            "starts_at": (now - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "DB upgrade",
        },
    )
    window = MaintenanceWindow.objects.get()
    assert window.is_active and window.created_by == client.user
    page = client.get(reverse("healthchecks:maintenance")).content.decode()
    assert "DB upgrade" in page and "End now" in page
    client.post(reverse("healthchecks:maintenance_end", args=[window.pk]))
    window.refresh_from_db()
    assert not window.is_active
    assert AuditEntry.objects.filter(action="healthchecks.maintenance_end").count() == 1


@pytest.mark.django_db
def test_metrics_export_blackbox_names(client):
    from healthchecks import services
    from healthchecks.probes import ProbeResult

    web = make_check(make_service("Web"), name="homepage", kind="http")
    tls = make_check(make_service("Edge"), name="cert", kind="tls")
    services.record_results(
        [
            (web.pk, ProbeResult("ok", "HTTP 200", 123.0, {"http_status": 200})),
            (tls.pk, ProbeResult("warning", "expires soon", 5.0, {"cert_expiry": 1900000000.0})),
        ]
    )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def scrape() -> tuple[str, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/metrics").content.decode()
        return body, [q["sql"] for q in queries.captured_queries if "healthchecks_check" in q["sql"]]

    # The probe collector reads every check in one query (the watchdog asks one
    # more question of the table): the count does not grow with the checks.
    _, few = scrape()
    for n in range(10):
        make_check(web.service, name=f"extra-{n}", kind="http")
    body, many = scrape()
    assert len(many) == len(few) <= 2, many
    assert 'probe_success{check="homepage",service="Web",type="http"} 1.0' in body
    assert 'probe_duration_seconds{check="homepage",service="Web",type="http"} 0.123' in body
    assert 'probe_http_status_code{check="homepage",service="Web",type="http"} 200.0' in body
    assert 'probe_ssl_earliest_cert_expiry{check="cert",service="Edge",type="tls"} 1.9e+09' in body
    assert 'opsconsole_check_state{check="cert",service="Edge",type="tls"} 1.0' in body
    assert 'probe_success{check="cert",service="Edge",type="tls"} 0.0' in body


@pytest.mark.django_db
def test_dashboard_panel_lists_failing_checks(client_as):
    make_check(name="db primary", state="critical", last_message="connection refused")
    make_check(name="fine", state="ok")
    body = client_as(Role.VIEWER).get(reverse("dashboard")).content.decode()
    assert "Critical: 1" in body and "OK: 1" in body and "db primary" in body


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_probes_the_console_itself():
    import io

    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    checks = {c.name: c for c in Check.objects.select_related("service")}
    assert checks["healthz"].config["url"] == "http://127.0.0.1:8000/healthz"
    assert checks["Connection usage %"].kind == "postgres"  # the suite runs on PostgreSQL
    assert checks["Ping"].kind == "redis" and checks["Nightly backup"].kind == "heartbeat"
    assert checks["TLS certificate (example.com)"].kind == "tls"
    assert Check.objects.count() == len(checks) == 7
    from healthchecks import services

    services.run_checks([checks["Connection usage %"].pk, checks["Ping"].pk])
    assert set(Check.objects.filter(name__in=["Connection usage %", "Ping"]).values_list("state", flat=True)) == {"ok"}


@pytest.mark.django_db
@pytest.mark.parametrize("n", [1, 300])
def test_form_and_maintenance_pages_query_count(client_as, django_assert_max_num_queries, n):
    _many_checks(n)
    check = Check.objects.first()
    now = timezone.now()
    MaintenanceWindow.objects.bulk_create(
        [
            MaintenanceWindow(
                check_ref=check,
                starts_at=now - datetime.timedelta(hours=i + 1),
                ends_at=now + datetime.timedelta(hours=1),
                reason=f"window {i}",
            )
            for i in range(min(n, 100))
        ]
    )
    client = client_as(Role.SRE)
    for url in (
        reverse("healthchecks:create"),
        reverse("healthchecks:edit", args=[check.pk]),
        reverse("healthchecks:maintenance"),
        reverse("healthchecks:maintenance_create"),
    ):
        with django_assert_max_num_queries(8):
            response = client.get(url)
        assert response.status_code == 200, url
