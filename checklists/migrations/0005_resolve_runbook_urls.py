"""Turn checklist items' runbook URL strings into real references.

Before 0004 an item pointed at a runbook by a plain URL string. Strings that
are this console's own runbook pages (`/runbooks/<id>/` on a host this
console answers to: CONSOLE_BASE_URL's or one of ALLOWED_HOSTS) and whose
runbook still exists become the `runbook` reference, and the string is
cleared. Every other string is an external link (a wiki page, another
tool, a runbook since deleted) and stays in `runbook_url` exactly as it was,
so nothing is lost. Run items are resolved too: a past run keeps pointing at
the runbook it linked. Going backwards writes the runbook's URL back into
empty strings.

The URL parsing is written out here rather than imported from the app, so
that this migration keeps working whatever the app's code becomes.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.db import migrations

RUNBOOK_PATH = re.compile(r"^/runbooks/(?P<pk>\d+)/?$")


def _own_hosts() -> set[str]:
    hosts = {(urlsplit(settings.CONSOLE_BASE_URL).hostname or "").lower()}
    hosts |= {h.lower().lstrip(".") for h in settings.ALLOWED_HOSTS if h and h != "*"}
    return hosts - {""}


def runbook_id(url: str, hosts: set[str]) -> int | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in hosts:
        return None
    match = RUNBOOK_PATH.match(parts.path)
    return int(match["pk"]) if match and not parts.query and not parts.fragment else None


def forwards(apps, schema_editor):
    Runbook = apps.get_model("runbooks", "Runbook")
    hosts = _own_hosts()
    existing = set(Runbook.objects.values_list("pk", flat=True))
    for name in ("TemplateItem", "RunItem"):
        model = apps.get_model("checklists", name)
        resolved = []
        for item in model.objects.exclude(runbook_url="").only("pk", "runbook_url").iterator(chunk_size=2000):
            pk = runbook_id(item.runbook_url, hosts)
            if pk is not None and pk in existing:
                item.runbook_id, item.runbook_url = pk, ""
                resolved.append(item)
        model.objects.bulk_update(resolved, ["runbook", "runbook_url"], batch_size=1000)


def backwards(apps, schema_editor):
    base = settings.CONSOLE_BASE_URL.rstrip("/")
    for name in ("TemplateItem", "RunItem"):
        model = apps.get_model("checklists", name)
        items = list(model.objects.filter(runbook__isnull=False, runbook_url="").only("pk", "runbook_id"))
        for item in items:
            item.runbook_url = f"{base}/runbooks/{item.runbook_id}/"
        model.objects.bulk_update(items, ["runbook_url"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("checklists", "0004_item_runbook_reference")]

    operations = [migrations.RunPython(forwards, backwards)]
