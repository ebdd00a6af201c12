from checklists import services
from checklists.models import ChecklistTemplate, TemplateItem
from tests.permissions import Case

HTMX = {"HX-Request": "true"}


def _template() -> ChecklistTemplate:
    template = ChecklistTemplate.objects.create(name=f"Perm {ChecklistTemplate.objects.count() + 1}")
    TemplateItem.objects.create(template=template, text="One", order=1)
    TemplateItem.objects.create(template=template, text="Two", order=2)
    return template


def _run(user) -> dict:
    run = services.run_start(actor=_admin(user), template=_template())
    return {"pk": run.pk, "item_pk": run.items.order_by("order").first().pk}


def _admin(user):
    # The matrix test's owner user may lack the capability; starting the run is setup, not the test.
    from django.contrib.auth.models import Group

    from opsconsole.models import User

    admin = User.objects.filter(username="perm-setup").first()
    if admin is None:
        admin = User.objects.create_user(username="perm-setup", password="pw-for-tests-1")
        admin.groups.add(Group.objects.get(name="Admin"))
    return admin


def _ticked_run(user) -> dict:
    kwargs = _run(user)
    services.item_tick(actor=_admin(user), run_id=kwargs["pk"], item_id=kwargs["item_pk"])
    return kwargs


def _run_only(user) -> dict:
    kwargs = _run(user)
    return {"pk": kwargs["pk"]}


def _template_kwargs(user) -> dict:
    return {"pk": _template().pk}


def _template_form(kwargs: dict) -> dict:
    return {
        "name": f"Edited {kwargs.get('pk', 'new')}",
        "description": "",
        "is_active": "on",
        "items-TOTAL_FORMS": "0",
        "items-INITIAL_FORMS": "0",
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
    }


CASES = [
    Case(
        "checklists:run_start",
        "checklist.tick",
        data=lambda kw: {"template": _template().pk, "due_within_hours": "2"},
    ),
    Case("checklists:item_tick", "checklist.tick", setup=_run, headers=HTMX),
    Case("checklists:item_reopen", "checklist.tick", setup=_ticked_run, headers=HTMX),
    Case(
        "checklists:item_na",
        "checklist.tick",
        setup=_run,
        data=lambda kw: {"reason": "n/a today"},
        headers=HTMX,
    ),
    Case(
        "checklists:item_note",
        "checklist.tick",
        setup=_run,
        data=lambda kw: {"note": "x", "evidence": "", "version": 1},
        headers=HTMX,
    ),
    Case("checklists:run_sign_off", "checklist.tick", setup=_run_only),
    Case("checklists:template_create", "config.edit", data=_template_form),
    Case("checklists:template_edit", "config.edit", setup=_template_kwargs, data=_template_form),
]
