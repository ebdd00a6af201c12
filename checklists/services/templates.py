"""Editing checklist templates and their schedules; importing Markdown checklists."""

import logging

from django.db import transaction

from opsconsole import audit
from opsconsole.roles import check_capability
from runbooks.selectors import runbook_for_link

from ..models import ChecklistTemplate, TemplateItem

logger = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("name", "description", "offers_handoff", "is_active")

ITEM_FIELDS = (
    "order",
    "section",
    "text",
    "help",
    "required",
    "runbook_id",
    "runbook_url",
    "expected_evidence",
    "health_check_id",
)

SCHEDULE_FIELDS = ("time_of_day", "days_of_week", "timezone", "due_within", "enabled")


def _require_editor(actor) -> None:
    check_capability(actor, "config.edit")


@transaction.atomic
def template_save(*, actor, template: ChecklistTemplate, item_forms=None, schedule_forms=None) -> ChecklistTemplate:
    """Save a template with its items and schedules (validated form and
    formsets). Past runs never change: they hold their own copies of the items."""
    _require_editor(actor)
    created = template.pk is None
    before = None if created else audit.snapshot(ChecklistTemplate.objects.get(pk=template.pk), TEMPLATE_FIELDS)
    template.save()
    after = audit.snapshot(template, TEMPLATE_FIELDS)
    if before != after:
        action = "checklists.template_create" if created else "checklists.template_update"
        audit.record(actor, action, template, before=before, after=after)
    for formset, fields, label in (
        (item_forms, ITEM_FIELDS, "item"),
        (schedule_forms, SCHEDULE_FIELDS, "schedule"),
    ):
        if formset is None:
            continue
        formset.instance = template
        for obj in formset.save():
            audit.record(actor, f"checklists.{label}_save", obj, after=audit.snapshot(obj, fields))
        for obj in formset.deleted_objects:
            audit.record(actor, f"checklists.{label}_delete", template, before=audit.snapshot(obj, fields))
    return template


def template_import(
    *, actor, name: str, parsed, description: str = "", update: bool = False
) -> tuple[ChecklistTemplate, bool]:
    """Create (or, with update=True, replace the items of) a template from a
    parsed checklist. Idempotent when update=False: an existing template of
    that name is left as it is."""
    with transaction.atomic():
        template, created = ChecklistTemplate.objects.get_or_create(
            name=name, defaults={"description": description or parsed.description}
        )
        if not created and not update:
            return template, False
        template.items.all().delete()
        links = [runbook_for_link(getattr(item, "link", ""), getattr(item, "link_label", "")) for item in parsed.items]
        TemplateItem.objects.bulk_create(
            TemplateItem(
                template=template,
                order=(index + 1) * 10,
                section=item.section,
                text=item.text,
                help=item.help,
                required=item.required,
                expected_evidence=item.expected_evidence,
                runbook_id=runbook_id,
                runbook_url=url,
            )
            for index, (item, (runbook_id, url)) in enumerate(zip(parsed.items, links, strict=True))
        )
        audit.record(
            actor,
            "checklists.template_import",
            template,
            after={"source": parsed.source, "title": parsed.title, "items": len(parsed.items)},
        )
    return template, created
