"""Checklist items reference runbooks by a real foreign key: the migration
that turns the old URL strings into references (and keeps every other link),
the template editor, the Markdown importer and the run page."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from checklists import importer, services
from opsconsole.roles import Role
from tests.runbooks.factories import make_runbook, system_admin

BEFORE = [("checklists", "0004_item_runbook_reference")]
AFTER = [("checklists", "0005_resolve_runbook_urls")]


@pytest.mark.django_db(transaction=True)
def test_migration_resolves_own_runbook_urls_and_keeps_the_rest(settings):
    settings.CONSOLE_BASE_URL = "https://ops.example.com"
    settings.ALLOWED_HOSTS = ["ops.example.com", "ops-internal.example.com"]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        apps = executor.loader.project_state(BEFORE).apps
        Runbook = apps.get_model("runbooks", "Runbook")
        Template = apps.get_model("checklists", "ChecklistTemplate")
        Item = apps.get_model("checklists", "TemplateItem")
        queue = Runbook.objects.create(title="Messenger Queue Backlog")
        template = Template.objects.create(name="Morning checks")
        urls = {
            "own": f"https://ops.example.com/runbooks/{queue.pk}/",
            "own-other-host": f"http://ops-internal.example.com/runbooks/{queue.pk}",
            "deleted": "https://ops.example.com/runbooks/999999/",
            "wiki": f"https://wiki.example.org/runbooks/{queue.pk}/",
            "with-query": f"https://ops.example.com/runbooks/{queue.pk}/?v=2",
            "none": "",
        }
        for order, (text, url) in enumerate(urls.items()):
            Item.objects.create(template=template, order=order, text=text, runbook_url=url)

        executor.loader.build_graph()
        executor.migrate(AFTER)
        apps = executor.loader.project_state(AFTER).apps
        after = {
            i.text: (i.runbook_id, i.runbook_url) for i in apps.get_model("checklists", "TemplateItem").objects.all()
        }
        assert after == {
            "own": (queue.pk, ""),
            "own-other-host": (queue.pk, ""),
            "deleted": (None, urls["deleted"]),  # kept: nothing is lost
            "wiki": (None, urls["wiki"]),
            "with-query": (None, urls["with-query"]),
            "none": (None, ""),
        }

        executor.loader.build_graph()
        executor.migrate(BEFORE)  # backwards: the references are written back as URLs
        apps = executor.loader.project_state(BEFORE).apps
        back = dict(apps.get_model("checklists", "TemplateItem").objects.values_list("text", "runbook_url"))
        assert back["own"] == back["own-other-host"] == f"https://ops.example.com/runbooks/{queue.pk}/"
        assert back["wiki"] == urls["wiki"]
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_template_editor_sets_the_reference_and_runs_link_to_the_runbook(client_as, make_template):
    runbook = make_runbook("Messenger Queue Backlog", steps=2)
    template = make_template(1)
    item = template.items.get()
    client = client_as(Role.SRE)
    page = client.get(reverse("checklists:template_edit", args=[template.pk])).content.decode()
    assert f'<option value="{runbook.pk}">Messenger Queue Backlog</option>' in page
    data = {
        "name": template.name,
        "is_active": "on",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "1",
        "items-0-id": item.pk,
        "items-0-order": "1",
        "items-0-text": "Queue under 1,000",
        "items-0-required": "on",
        "items-0-runbook": runbook.pk,
        "items-0-runbook_url": "",
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("checklists:template_edit", args=[template.pk]), data)
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.runbook == runbook and item.runbook_url == ""
    bad = client.post(reverse("checklists:template_edit", args=[template.pk]), data | {"items-0-runbook": "999999"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    item.refresh_from_db()
    assert item.runbook == runbook

    run = services.run_start(actor=system_admin(), template=template)
    assert run.items.get().runbook_id == runbook.pk
    body = client.get(reverse("checklists:run", args=[run.pk])).content.decode()
    assert f'href="{reverse("runbooks:detail", args=[runbook.pk])}" data-testid="item-runbook"' in body


@pytest.mark.django_db
def test_importer_turns_runbook_links_into_references(settings):
    settings.CONSOLE_BASE_URL = "https://ops.example.com"
    runbook = make_runbook("Messenger Queue Backlog", steps=2)
    text = f"""# Morning checks

- [ ] Queue depth is normal, else [the backlog runbook](https://ops.example.com/runbooks/{runbook.pk}/)
- [ ] Follow [Messenger Queue Backlog](https://wiki.example.org/queue) when it is not
- [ ] Check the [status page](https://status.example.org/)
- [ ] Plain item
"""
    [parsed] = importer.parse_markdown(text, source="morning.md")
    template, created = services.template_import(actor=system_admin(), name=parsed.title, parsed=parsed)
    items = list(template.items.order_by("order").values_list("text", "runbook_id", "runbook_url"))
    assert created and items == [
        ("Queue depth is normal, else the backlog runbook", runbook.pk, ""),
        ("Follow Messenger Queue Backlog when it is not", runbook.pk, ""),  # named by its title
        ("Check the status page", None, "https://status.example.org/"),
        ("Plain item", None, ""),
    ]
