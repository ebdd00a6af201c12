"""No database constraint name reaches a user: every constraint of a model edited through a
console form says what is wrong in words (issue 13: "Constraint maintenance_has_target is
violated")."""

import pytest
from django.apps import apps
from django.db.models import BaseConstraint

from healthchecks.forms import MaintenanceWindowForm

FORM_MODELS = [
    "checklists.ChecklistTemplate",
    "checklists.TemplateItem",
    "checklists.Schedule",
    "incidents.SeverityLevel",
    "healthchecks.Check",
    "healthchecks.MaintenanceWindow",
    "opsconsole.User",
]


@pytest.mark.parametrize("label", FORM_MODELS)
def test_constraints_have_words_not_names(label):
    default = BaseConstraint.default_violation_error_message
    for constraint in apps.get_model(label)._meta.constraints:
        message = str(constraint.get_violation_error_message())
        assert constraint.violation_error_message not in (None, default), constraint.name
        assert constraint.name not in message


@pytest.mark.django_db
def test_maintenance_without_target_says_so_once():
    form = MaintenanceWindowForm(
        {"starts_at": "2026-01-01T10:00", "ends_at": "2026-01-01T09:00", "reason": "db upgrade"}
    )
    assert not form.is_valid()
    messages = [m for errors in form.errors.values() for m in errors]
    assert "Choose a service or a check." in messages
    assert "The window must end after it starts." in messages
    assert len(messages) == len(set(messages)) == 2
    assert not any("maintenance_" in m or "Constraint" in m for m in messages)
