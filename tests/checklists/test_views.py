import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from checklists import services
from checklists.models import ChecklistRun, RunItem, Schedule, TemplateItem
from opsconsole import audit
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(params=["small", "large"])
def data(request, make_template, make_user, make_check):
    """Small and large data: page query counts must not grow with either."""
    big = request.param == "large"
    sre = make_user(Role.SRE)
    template = make_template(40 if big else 3)
    if big:
        check = make_check()
        TemplateItem.objects.filter(template=template, order__lt=5).update(health_check=check, section="Checks")
    runs = [services.run_start(actor=sre, template=template) for _ in range(25 if big else 1)]
    for run in runs[:-1]:
        for item in run.items.all()[:3]:
            services.item_tick(actor=sre, run_id=run.pk, item_id=item.pk)
        services.item_save_note(
            actor=sre,
            run_id=run.pk,
            item_id=run.items.first().pk,
            note="n",
            evidence="e",
            version=1,
        )
    if big:
        old = runs[0]
        ChecklistRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=30))
        Schedule.objects.create(template=template, time_of_day=datetime.time(8), days_of_week="01234")
    return {"template": template, "run": runs[-1], "sre": sre}


def test_index_lists_runs_with_constant_queries(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.SRE)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("checklists:index"))
    assert response.status_code == 200
    assert data["template"].name in response.content.decode()


def test_run_page_constant_queries(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.SRE)
    with django_assert_max_num_queries(7):
        response = client.get(reverse("checklists:run", args=[data["run"].pk]))
    body = response.content.decode()
    assert body.count('data-testid="item"') == data["run"].items.count()
    assert "<progress" in body and 'hx-trigger="every 3s"' in body
    assert "style=" not in body  # CSP: no inline styles


def test_dashboard_panel_constant_queries(client_as, rf, data, django_assert_max_num_queries):
    # The panel alone: the whole dashboard (every area's panel) has its own
    # budget in tests/opsconsole/test_demo_and_pages.py.
    from django.template.loader import render_to_string

    from checklists.selectors import dashboard_panel_context

    client = client_as(Role.VIEWER)
    assert "Checklists today" in client.get(reverse("dashboard")).content.decode()
    ChecklistRun.objects.filter(pk=data["run"].pk).update(status=ChecklistRun.Status.MISSED)
    request = rf.get("/")
    request.user = client.user
    # One query for the runs; one for the context processors (the viewer's role).
    with django_assert_max_num_queries(2):
        html = render_to_string(
            "checklists/_dashboard_panel.html", {"ctx": dashboard_panel_context(request)}, request=request
        )
    assert 'data-testid="missed-runs"' in html and data["template"].name in html


def test_history_page_constant_queries(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("checklists:template_history", args=[data["template"].pk]))
    body = response.content.decode()
    assert body.count('data-testid="heat-day"') == 90
    assert "style=" not in body


def test_templates_page_and_editor_constant_queries(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.SRE)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("checklists:templates")).status_code == 200
    # 12: the runbook dropdown's choices are read once (count + rows) for all item forms.
    with django_assert_max_num_queries(12):
        response = client.get(reverse("checklists:template_edit", args=[data["template"].pk]))
    assert response.status_code == 200


def test_csv_export_constant_queries(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.VIEWER)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("checklists:template_export", args=[data["template"].pk]))
    content = b"".join(response.streaming_content) if response.streaming else response.content
    lines = content.decode().strip().splitlines()
    assert lines[0].startswith("run,title,slot")
    assert len(lines) == 1 + ChecklistRun.objects.filter(template=data["template"]).count()


def test_htmx_tick_returns_only_the_item_and_progress(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.SRE)
    run = data["run"]
    item = run.items.filter(state=RunItem.State.OPEN).first()
    # A new database has stream 1's audit head only; the first tick would make
    # the others (once per database) before its one statement.
    audit.ensure_heads()
    with django_assert_max_num_queries(6) as captured:
        response = client.post(reverse("checklists:item_tick", args=[run.pk, item.pk]), headers=HTMX)
    # The session with its user and roles, the tick (UPDATE returning the item,
    # with its audit append); the savepoint pair is the test's own transaction.
    assert len([q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]) == 2
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="item-{item.pk}-status"' in body and 'id="run-progress" class="ck-progress" hx-swap-oob="true"' in body
    assert "<html" not in body and body.count("ck-status") == 1
    # The untick form posts to the item's own URL, with and without JavaScript.
    reopen = reverse("checklists:item_reopen", args=[run.pk, item.pk])
    assert f'action="{reopen}"' in body and f'hx-post="{reopen}"' in body and "csrfmiddlewaretoken" in body
    item.refresh_from_db()
    assert item.ticked_by == client.user


def test_plain_post_tick_redirects_without_js(client_as, data):
    client = client_as(Role.SRE)
    run = data["run"]
    item = run.items.filter(state=RunItem.State.OPEN).first()
    response = client.post(reverse("checklists:item_tick", args=[run.pk, item.pk]))
    assert response.status_code == 302 and response["Location"].endswith(f"#item-{item.pk}")
    item.refresh_from_db()
    assert item.state == RunItem.State.TICKED


def test_poll_returns_204_when_nothing_changed_and_changes_otherwise(client_as, data, django_assert_max_num_queries):
    client = client_as(Role.SRE)
    run = data["run"]
    url = reverse("checklists:run_poll", args=[run.pk])
    later = (timezone.now() + datetime.timedelta(seconds=10)).isoformat()
    with django_assert_max_num_queries(6):
        assert client.get(url, {"since": later}).status_code == 204
    since = timezone.now().isoformat()
    other = data["sre"]
    item = run.items.filter(state=RunItem.State.OPEN).last()
    services.item_tick(actor=other, run_id=run.pk, item_id=item.pk)
    with django_assert_max_num_queries(7):
        response = client.get(url, {"since": since})
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="item-{item.pk}-status" data-state="ticked" hx-swap-oob="true"' in body
    assert str(other) in body
    # The new poller carries a new `since`.
    assert re.search(r'id="run-poll" hx-get="[^"]+since=', body)


def test_note_conflict_shows_both_texts(client_as, data):
    client = client_as(Role.SRE)
    run = data["run"]
    item = run.items.first()
    url = reverse("checklists:item_note", args=[run.pk, item.pk])
    version = RunItem.objects.get(pk=item.pk).version
    services.item_save_note(
        actor=data["sre"],
        run_id=run.pk,
        item_id=item.pk,
        note="Theirs",
        evidence="",
        version=version,
    )
    response = client.post(url, {"note": "Mine", "evidence": "", "version": version}, headers=HTMX)
    body = response.content.decode()
    assert 'data-testid="conflict"' in body and "Theirs" in body and "Mine" in body
    assert "meanwhile" in body
    plain = client.post(url, {"note": "Mine", "evidence": "", "version": version})
    assert plain.status_code == 409 and "Theirs" in plain.content.decode()
    assert RunItem.objects.get(pk=item.pk).note == "Theirs"


def test_a_note_names_its_author_and_an_authorless_note_no_dangling_dash(client_as, data):
    run, item = data["run"], data["run"].items.first()
    services.item_save_note(
        actor=data["sre"], run_id=run.pk, item_id=item.pk, note="Disk at 71 %", evidence="", version=1
    )
    client = client_as(Role.SRE)

    def note_html() -> str:
        body = client.get(reverse("checklists:run", args=[run.pk])).content.decode()
        return re.search(r'<p class="ck-note" data-testid="note">(.*?)</p>', body, re.S).group(1)

    assert f"— {data['sre']}" in note_html()
    # Its author's account was deleted (the foreign key is SET_NULL): the note stays, alone.
    RunItem.objects.filter(pk=item.pk).update(note_updated_by=None)
    assert note_html().strip() == "Disk at 71 %"


def test_bad_input_is_a_message_not_a_500(client_as, data):
    client = client_as(Role.SRE)
    run = data["run"]
    item = run.items.filter(state=RunItem.State.OPEN).first()
    response = client.post(reverse("checklists:item_na", args=[run.pk, item.pk]), {"reason": ""}, headers=HTMX)
    assert response.status_code == 200 and "Say why" in response.content.decode()
    response = client.post(reverse("checklists:item_note", args=[run.pk, item.pk]), {"note": "x", "version": "abc"})
    assert response.status_code == 400 and "out of date" in response.content.decode()
    assert client.post(reverse("checklists:item_tick", args=[run.pk, 999999])).status_code == 404
    assert client.get(reverse("checklists:run_poll", args=[run.pk]), {"since": "garbage"}).status_code in (200, 204)
    response = client.post(reverse("checklists:run_start"), {"template": "nope", "due_within_hours": "-1"})
    assert response.status_code == 302
    assert RunItem.objects.get(pk=item.pk).state == RunItem.State.OPEN


def test_sign_off_refused_with_message_then_accepted(client_as, data):
    client = client_as(Role.SRE)
    run = data["run"]
    url = reverse("checklists:run_sign_off", args=[run.pk])
    response = client.post(url, follow=True)
    assert "Not signed off" in response.content.decode()
    for item in run.items.filter(state=RunItem.State.OPEN):
        client.post(reverse("checklists:item_tick", args=[run.pk, item.pk]))
    response = client.post(url, follow=True)
    assert "signed off" in response.content.decode()
    run.refresh_from_db()
    assert run.status == ChecklistRun.Status.COMPLETED


def test_evening_run_links_to_handoff(client_as, make_template):
    client = client_as(Role.SRE)
    template = make_template(1, offers_handoff=True)
    run = services.run_start(actor=client.user, template=template)
    body = client.get(reverse("checklists:run", args=[run.pk])).content.decode()
    assert 'data-testid="handoff-link"' in body and reverse("oncall:handoff_new") in body


def test_manual_start_from_index(client_as, make_template):
    client = client_as(Role.SRE)
    template = make_template(2)
    response = client.post(reverse("checklists:run_start"), {"template": template.pk, "due_within_hours": "1.5"})
    run = ChecklistRun.objects.get()
    assert response["Location"] == reverse("checklists:run", args=[run.pk])
    assert run.slot is None and run.started_by == client.user
    assert abs((run.due_at - run.created_at) - datetime.timedelta(minutes=90)) < datetime.timedelta(seconds=1)


def test_template_editor_saves_items_and_schedules_without_touching_runs(client_as, make_template):
    client = client_as(Role.SRE)
    template = make_template(1)
    run = services.run_start(actor=client.user, template=template)
    item = template.items.get()
    data = {
        "name": "Morning (new)",
        "description": "d",
        "is_active": "on",
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "1",
        "items-0-id": item.pk,
        "items-0-order": "1",
        "items-0-text": "Renamed",
        "items-0-required": "on",
        "items-1-order": "2",
        "items-1-text": "Added",
        "items-1-section": "Extra",
        "schedules-TOTAL_FORMS": "1",
        "schedules-INITIAL_FORMS": "0",
        "schedules-0-time_of_day": "07:30",
        "schedules-0-timezone": "Europe/Paris",
        "schedules-0-days": ["0", "2"],
        "schedules-0-due_within_minutes": "90",
        "schedules-0-enabled": "on",
    }
    response = client.post(reverse("checklists:template_edit", args=[template.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert sorted(template.items.values_list("text", flat=True)) == ["Added", "Renamed"]
    schedule = template.schedules.get()
    assert schedule.days_of_week == "02" and schedule.due_within == datetime.timedelta(minutes=90)
    assert list(run.items.values_list("text", flat=True)) == ["Item 1"]


def test_template_editor_rejects_bad_schedule(client_as, make_template):
    client = client_as(Role.SRE)
    template = make_template(1)
    data = {
        "name": template.name,
        "is_active": "on",
        "items-TOTAL_FORMS": "0",
        "items-INITIAL_FORMS": "0",
        "schedules-TOTAL_FORMS": "1",
        "schedules-INITIAL_FORMS": "0",
        "schedules-0-time_of_day": "25:99",
        "schedules-0-timezone": "Mars/Olympus",
        "schedules-0-days": [],
        "schedules-0-due_within_minutes": "0",
    }
    response = client.post(reverse("checklists:template_edit", args=[template.pk]), data)
    assert response.status_code == 200 and 'class="error"' in response.content.decode()
    assert not template.schedules.exists()


def test_history_figures(client_as, make_template, make_user):
    from checklists.selectors import template_history

    alice, bob = make_user(Role.SRE, first_name="Alice"), make_user(Role.SRE, first_name="Bob")
    template = make_template(2)
    now = timezone.now()
    durations = []
    for n, (who, minutes) in enumerate([(alice, 10), (alice, 30), (bob, 20)]):
        run = services.run_start(actor=who, template=template)
        first, second = run.items.order_by("order")
        services.item_tick(actor=who, run_id=run.pk, item_id=first.pk)
        services.item_mark_na(actor=who, run_id=run.pk, item_id=second.pk, reason="Not today")
        services.run_sign_off(actor=who, run=run)
        created = now - datetime.timedelta(days=n + 1)
        ChecklistRun.objects.filter(pk=run.pk).update(
            created_at=created,
            due_at=created + datetime.timedelta(hours=2),
            signed_off_at=created + datetime.timedelta(minutes=minutes),
        )
        RunItem.objects.filter(run=run).update(ticked_at=created + datetime.timedelta(minutes=5))
        durations.append(minutes)
    missed = services.run_start(actor=bob, template=template)
    ChecklistRun.objects.filter(pk=missed.pk).update(status=ChecklistRun.Status.MISSED)
    history = template_history(template)
    assert history["median_seconds"] == 20 * 60
    assert history["per_person"] == [(str(alice), 2), (str(bob), 1)]
    na_row = next(row for row in history["item_stats"] if row["text"] == "Item 2")
    assert na_row["na"] == 3
    late_row = next(row for row in history["item_stats"] if row["text"] == "Item 1")
    assert late_row["late"] == 1  # open item of the missed run
    classes = [day.css for day in history["days"]]
    assert classes[-1] == "missed" and classes.count("completed") == 3 and len(classes) == 90
    body = client_as(Role.VIEWER).get(reverse("checklists:template_history", args=[template.pk])).content.decode()
    assert "20 min" in body and "ck-day missed" in body


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "//evil.example/runbook",
        "/\\evil.example",
        "data:text/html,x",
        "ftp://host/x",
        "/runbooks/1",
    ],
)
def test_editor_rejects_links_that_are_not_absolute_http(client_as, make_template, link):
    client = client_as(Role.SRE)
    template = make_template(1)
    item = template.items.get()
    data = {
        "name": template.name,
        "is_active": "on",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "1",
        "items-0-id": item.pk,
        "items-0-order": "1",
        "items-0-text": "x",
        "items-0-required": "on",
        "items-0-runbook_url": link,
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("checklists:template_edit", args=[template.pk]), data)
    assert response.status_code == 200 and "https://" in response.content.decode()
    item.refresh_from_db()
    assert item.runbook_url == "" and item.text == "Item 1"


def test_each_run_is_listed_in_one_place(client_as, make_template):
    """Today's open run is under "Today" only; an older open run under "Open"
    only; a missed run today is named once on the dashboard (in the alert)."""
    client = client_as(Role.SRE)
    template = make_template(1)
    today_run = services.run_start(actor=client.user, template=template)
    older = services.run_start(actor=client.user, template=template)
    missed = services.run_start(actor=client.user, template=template)
    ChecklistRun.objects.filter(pk=older.pk).update(created_at=timezone.now() - datetime.timedelta(days=2))
    ChecklistRun.objects.filter(pk=missed.pk).update(status=ChecklistRun.Status.MISSED)
    from checklists.selectors import dashboard_panel_context, index_runs

    runs = index_runs()
    assert [r.pk for r in runs.today] == [missed.pk, today_run.pk]
    assert [r.pk for r in runs.open] == [older.pk] and runs.missed == []
    body = client.get(reverse("checklists:index")).content.decode()
    for run in (today_run, older, missed):
        assert body.count(reverse("checklists:run", args=[run.pk]) + '"') == 1
    panel = dashboard_panel_context(None)
    assert [r.pk for r in panel["today"]] == [today_run.pk] and [r.pk for r in panel["missed"]] == [missed.pk]
