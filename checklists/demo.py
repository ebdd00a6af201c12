"""Demo checklists, built from the operations guides (seeds) by the Markdown
importer. Idempotent: templates, schedules and runs that exist are kept."""

import datetime
from pathlib import Path

from django.utils import timezone

from opsconsole.models import User

from . import services
from .importer import parse_file
from .models import ChecklistRun, ChecklistTemplate, RunItem, Schedule

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seeds"

# (template name, seed file, title of the checklist in it, description, offers hand-off)
DEMO_TEMPLATES = [
    (
        "Morning checklist",
        "001_cd34f7a97961a3b9.txt",
        "Morning Checklist",
        "Start of shift: overnight alerts, queues, failed jobs, disk, backups, security.",
        False,
    ),
    (
        "Evening checklist",
        "001_cd34f7a97961a3b9.txt",
        "Evening Checklist",
        "End of shift: scheduled jobs, error rates, pending transactions, backups, hand-off.",
        True,
    ),
    (
        "Maintenance window",
        "003_68c4223fccb52eda.txt",
        "Maintenance window checklist",
        "Started by hand for a scheduled maintenance.",
        False,
    ),
    (
        "Release deployment",
        "001_cd34f7a97961a3b9.txt",
        "Release Deployment",
        "Pre-deployment, deployment steps, post-deployment, and the rollback triggers to watch.",
        False,
    ),
    (
        "Environment promotion",
        "002_4b71690ed37a1208.txt",
        "Environment Promotion Checklist",
        "Before promoting an environment (e.g. staging → production).",
        False,
    ),
]

SCHEDULES = {"Morning checklist": datetime.time(8, 0), "Evening checklist": datetime.time(18, 0)}


def find_checklist(path: Path, title: str):
    for parsed in parse_file(path):
        if parsed.title == title:
            return parsed
    raise LookupError(f"no checklist titled {title!r} in {path.name}")


def seed_templates(stdout=None) -> dict[str, ChecklistTemplate]:
    templates = {}
    for name, filename, title, description, handoff in DEMO_TEMPLATES:
        template, created = services.template_import(
            actor=None,
            name=name,
            parsed=find_checklist(FIXTURES / filename, title),
            description=description,
        )
        if created and handoff:
            template.offers_handoff = True
            template.save(update_fields=["offers_handoff", "updated_at"])
        templates[name] = template
        if created and stdout:
            stdout.write(f"  checklist template: {name} ({template.items.count()} items)")
    for name, at in SCHEDULES.items():
        Schedule.objects.get_or_create(
            template=templates[name],
            time_of_day=at,
            defaults={
                "days_of_week": "01234",
                "timezone": "Europe/London",
                "due_within": datetime.timedelta(hours=2),
            },
        )
    return templates


def seed(stdout=None) -> None:
    templates = seed_templates(stdout)
    if ChecklistRun.objects.exists():
        return
    sre = User.objects.filter(username="sre").first()
    if sre is None:
        return
    now = timezone.now()
    # Yesterday's morning run, completed by the SRE; today's, open and half done.
    done = services.run_start(actor=sre, template=templates["Morning checklist"])
    ChecklistRun.objects.filter(pk=done.pk).update(
        created_at=now - datetime.timedelta(days=1, minutes=40),
        due_at=now - datetime.timedelta(hours=20),
    )
    for item in done.items.all():
        services.item_tick(actor=sre, run_id=done.pk, item_id=item.pk)
    done.refresh_from_db()
    services.run_sign_off(actor=sre, run=done)
    today = services.run_start(actor=sre, template=templates["Morning checklist"])
    first_items = list(today.items.order_by("order")[:3])
    for item in first_items[:2]:
        services.item_tick(actor=sre, run_id=today.pk, item_id=item.pk)
    noted = RunItem.objects.get(pk=first_items[0].pk)
    services.item_save_note(
        actor=sre,
        run_id=today.pk,
        item_id=noted.pk,
        note="Two warnings overnight, both self-resolved.",
        evidence="",
        version=noted.version,
    )
    if stdout:
        stdout.write("  checklist runs: one completed yesterday, one open today")
