"""Live pages (opsconsole/live.py): a poll with nothing new is a cheap 304;
a change made by someone else re-renders the page for the poller."""

import pytest
from django.urls import reverse

from healthchecks.models import Check
from incidents import services as incident_services
from incidents.models import Status
from opsconsole import live
from opsconsole.models import Service
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db

POLL = {"HX-Request": "true", "HX-Trigger": live.POLLER_ID}


@pytest.fixture(autouse=True)
def _no_minute_refresh(monkeypatch):
    # A minute boundary between two requests would re-render the page (by
    # design): keep it out of the assertions.
    monkeypatch.setattr(live, "REFRESH_SECONDS", 10**9)


@pytest.fixture
def pages(make_user):
    ic = make_user(Role.INCIDENT_COMMANDER)
    incident = incident_services.incident_declare(actor=ic, title="Checkout errors", severity=2)
    service = Service.objects.create(slug="api", name="API")
    check = Check.objects.create(service=service, name="API health", kind=Check.Kind.HTTP)
    return {
        "ic": ic,
        "incident": incident,
        "urls": [
            reverse("dashboard"),
            reverse("incidents:list") + "?status=open",
            reverse("incidents:detail", args=[incident.reference]),
            reverse("healthchecks:board"),
            reverse("healthchecks:detail", args=[check.pk]),
        ],
    }


def _etag(body: str) -> str:
    start = body.index('id="live-poll"')
    tag = body[start:].split('data-etag="', 1)[1].split('"', 1)[0]
    return tag.replace("&quot;", '"')


def test_each_live_page_answers_304_with_at_most_three_queries(client_as, pages, django_assert_max_num_queries):
    client = client_as(Role.SRE)  # not a superuser: the role check costs its query
    for url in pages["urls"]:
        body = client.get(url).content.decode()
        assert 'hx-trigger="every 3s, live-now"' in body and 'hx-swap="none"' in body, url
        etag = _etag(body)
        with django_assert_max_num_queries(3):
            response = client.get(url, headers={**POLL, "If-None-Match": etag})
        assert response.status_code == 304, url
        assert response.content == b"" and response["ETag"] == etag
        # A stale tag, or a plain request, gets the page.
        assert client.get(url, headers={**POLL, "If-None-Match": '"stale"'}).status_code == 200
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 200


def test_a_change_by_someone_else_re_renders_the_page(
    client_as, pages, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client = client_as(Role.SRE)
    incident = pages["incident"]
    detail, listing = pages["urls"][2], pages["urls"][1]
    tags = {url: _etag(client.get(url).content.decode()) for url in (detail, listing)}
    with django_capture_on_commit_callbacks(execute=True):
        incident_services.incident_transition(incident=incident, actor=pages["ic"], to=Status.ACKNOWLEDGED)
    response = client.get(detail, headers={**POLL, "If-None-Match": tags[detail]})
    body, new_tag = response.content.decode(), response["ETag"]
    assert response.status_code == 200 and new_tag != tags[detail]
    assert response["Cache-Control"] == "no-store"
    # The full page (its regions are picked out by htmx), with the new state.
    assert 'id="incident-header"' in body and 'data-testid="status">Acknowledged' in body
    assert 'data-testid="to-acknowledged"' not in body
    assert f'data-testid="commander">{pages["ic"]}' in body
    response = client.get(listing, headers={**POLL, "If-None-Match": tags[listing]})
    assert response.status_code == 200 and 'id="incident-rows"' in response.content.decode()
    # The new tag is quiet again.
    assert _etag(body) == new_tag
    with django_assert_max_num_queries(3):
        assert client.get(detail, headers={**POLL, "If-None-Match": new_tag}).status_code == 304


def test_check_results_bump_the_check_page_only_when_they_arrive(client_as, pages, django_capture_on_commit_callbacks):
    from healthchecks.probes import ProbeResult
    from healthchecks.services import record_results

    client = client_as(Role.VIEWER)
    check_url, board_url = pages["urls"][4], pages["urls"][3]
    check = Check.objects.get()
    tags = {url: _etag(client.get(url).content.decode()) for url in (check_url, board_url)}
    with django_capture_on_commit_callbacks(execute=True):
        record_results([(check.pk, ProbeResult(state="ok", message="200 OK", latency_ms=12.0))], reschedule=False)
    # The first result moves the check from unknown to ok: both pages change.
    for url in (check_url, board_url):
        assert client.get(url, headers={**POLL, "If-None-Match": tags[url]}).status_code == 200
    tags = {url: _etag(client.get(url).content.decode()) for url in (check_url, board_url)}
    with django_capture_on_commit_callbacks(execute=True):
        record_results([(check.pk, ProbeResult(state="ok", message="200 OK", latency_ms=13.0))], reschedule=False)
    # Same state: the check's page has a new result, the board has nothing new.
    assert client.get(check_url, headers={**POLL, "If-None-Match": tags[check_url]}).status_code == 200
    assert client.get(board_url, headers={**POLL, "If-None-Match": tags[board_url]}).status_code == 304


def test_a_poll_leaves_messages_for_the_next_page(client_as, pages):
    client = client_as(Role.SRE)
    url = pages["urls"][0]
    etag = _etag(client.get(url).content.decode())
    # The user's own action queues a message; a poll lands before the redirect's page.
    response = client.post(reverse("profile"), {"first_name": "Sam", "last_name": "R", "timezone": "UTC"})
    assert response.status_code == 302
    poll = client.get(url, headers={**POLL, "If-None-Match": etag + "x"})
    assert poll.status_code == 200  # htmx swaps only the live regions: the message is not shown
    assert "Profile saved." in client.get(url).content.decode()


def test_one_transaction_bumps_its_areas_in_one_cache_write(monkeypatch, django_capture_on_commit_callbacks):
    from django.db import transaction

    writes = []
    monkeypatch.setattr(live, "_store", lambda areas: writes.append(areas))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for n in range(500):
            live.bump("incidents", f"check:{n % 3}")
        try:
            with transaction.atomic():
                live.bump("runbooks")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        # The savepoint's rollback took nothing away from what the transaction had bumped.
        live.bump("oncall")
    # One write for the transaction's own bumps; the savepoint's was dropped with it.
    assert len(callbacks) == 1
    assert writes == [("check:0", "check:1", "check:2", "incidents", "oncall")]
    # The next transaction starts afresh.
    with django_capture_on_commit_callbacks(execute=True):
        live.bump("healthchecks")
    assert writes[-1] == ("healthchecks",)


def test_bumps_in_savepoints_are_stored_once_per_commit(monkeypatch, django_capture_on_commit_callbacks):
    from django.db import transaction

    writes = []
    monkeypatch.setattr(live, "_store", lambda areas: writes.append(areas))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        live.bump("incidents")
        with transaction.atomic():  # an Alertmanager delivery nests savepoints like this
            live.bump("incidents")
            with transaction.atomic():
                live.bump("incidents", "oncall")
        with transaction.atomic():
            live.bump("incidents")
    # One registration per savepoint level, but the commit writes each area once.
    assert len(callbacks) == 4
    assert writes == [("incidents",), ("oncall",)]
    with django_capture_on_commit_callbacks(execute=True):
        live.bump("incidents")
    assert writes[-1] == ("incidents",)  # the next transaction stores its own


def test_many_rolled_back_savepoints_do_not_split_a_commit(monkeypatch, django_capture_on_commit_callbacks):
    """Dead registrations pile up (rolled-back savepoints, or earlier rolled-back
    transactions such as other tests'); forgetting them must not start a second
    bookkeeping mid-transaction, which stored an area twice in one commit."""
    from django.db import transaction

    writes = []
    monkeypatch.setattr(live, "_store", lambda areas: writes.append(areas))
    with django_capture_on_commit_callbacks(execute=True):
        live.bump("incidents")
        for _ in range(100):
            try:
                with transaction.atomic():
                    live.bump("runbooks")
                    raise RuntimeError("rolled back")
            except RuntimeError:
                pass
        with transaction.atomic():
            live.bump("incidents", "oncall")
    assert writes == [("incidents",), ("oncall",)]
    txn = transaction.get_connection().__dict__["_live_transaction"]
    assert len(txn.registered) <= txn.prune_above <= 64  # pruned, not grown without bound
