import datetime

import pytest
from django.utils import timezone

from checklists.models import ChecklistTemplate, Schedule, TemplateItem
from healthchecks.models import Check
from opsconsole.models import Service


@pytest.fixture
def make_template(db):
    """make_template(n_items=3, required=True, name=...) → a template with items."""
    counter = {"n": 0}

    def make(n_items: int = 3, *, name: str | None = None, optional: int = 0, **fields) -> ChecklistTemplate:
        counter["n"] += 1
        template = ChecklistTemplate.objects.create(name=name or f"Checklist {counter['n']}", **fields)
        TemplateItem.objects.bulk_create(
            TemplateItem(template=template, order=i, text=f"Item {i + 1}", required=i >= optional)
            for i in range(n_items)
        )
        return template

    return make


@pytest.fixture
def make_schedule(db):
    def make(template, at=datetime.time(8, 0), days="0123456", tz="UTC", due=datetime.timedelta(hours=2)):
        return Schedule.objects.create(
            template=template, time_of_day=at, days_of_week=days, timezone=tz, due_within=due
        )

    return make


@pytest.fixture
def make_check(db):
    def make(state=Check.State.OK, name="API health"):
        service, _ = Service.objects.get_or_create(slug="api", defaults={"name": "API"})
        return Check.objects.create(
            service=service,
            name=name,
            kind=Check.Kind.HTTP,
            state=state,
            last_message="200 OK in 42 ms",
            last_summary="200 OK in 42 ms",  # evidence quotes the summary, never the detailed message
            last_checked_at=timezone.now(),
        )

    return make
