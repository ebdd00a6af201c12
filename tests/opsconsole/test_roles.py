import pytest

from opsconsole.auth_backends import RolesAllauthBackend, RolesModelBackend
from opsconsole.roles import CAPABILITIES, Role, has_capability, primary_role, user_roles

# The docs/roles.md matrix, restated independently of roles.py so that a change to
# either one is caught.
MATRIX = {
    "checklist.tick": "- y y y y",
    "incident.declare": "- y y y y",
    "incident.note": "- y y y y",
    "incident.manage": "- - y y y",
    "review.write": "- y y y y",
    "review.approve": "- - - y y",
    "runbook.run": "- y y y y",
    "handoff.write": "- y y y y",
    "remediation.request": "- y y y y",
    "remediation.approve": "- y y y y",
    "remediation.preapprove": "- - - y y",
    "config.edit": "- y y y y",
    "schedule.edit": "- - - y y",
    "users.manage": "- - - - y",
}
ORDER = [Role.VIEWER, Role.SRE, Role.INCIDENT_COMMANDER, Role.MANAGER, Role.ADMIN]


@pytest.mark.django_db
@pytest.mark.parametrize("capability", sorted(MATRIX))
def test_capabilities_follow_the_product_matrix(make_user, capability):
    for role, cell in zip(ORDER, MATRIX[capability].split(), strict=True):
        assert has_capability(make_user(role), capability) is (cell == "y"), (capability, role)


def test_every_capability_is_in_the_matrix_or_read():
    assert set(CAPABILITIES) - set(MATRIX) <= {"read", "incident.manage_assigned", "incident.view_restricted"}


@pytest.mark.django_db
def test_superuser_is_admin_and_roles_are_cached(make_user, django_assert_num_queries):
    user = make_user(None, is_superuser=True)
    assert user_roles(user) == {Role.ADMIN}
    sre = make_user(Role.SRE)
    with django_assert_num_queries(1):
        user_roles(sre)
        user_roles(sre)
        has_capability(sre, "checklist.tick")
    assert primary_role(sre) == Role.SRE


@pytest.mark.django_db
def test_user_without_role_can_do_nothing(make_user):
    nobody = make_user(None)
    assert not any(has_capability(nobody, cap) for cap in CAPABILITIES)


@pytest.mark.django_db
@pytest.mark.parametrize("backend_class", [RolesModelBackend, RolesAllauthBackend])
def test_the_signed_in_user_comes_with_its_roles_in_one_query(
    make_user, django_assert_num_queries, django_user_model, backend_class
):
    sre = make_user(Role.SRE, first_name="Zoë", timezone="Europe/Paris")
    backend = backend_class()
    with django_assert_num_queries(1):
        loaded = backend.get_user(sre.pk)
        assert has_capability(loaded, "checklist.tick") and not has_capability(loaded, "users.manage")
    fresh = django_user_model.objects.get(pk=sre.pk)
    for field in django_user_model._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(fresh, field.attname), field.name
    assert not loaded._state.adding and loaded._state.db == "default"
    assert backend.get_user(sre.pk + 10_000) is None
    fresh.is_active = False
    fresh.save()
    assert backend.get_user(sre.pk) is None  # deactivated: signed out on the next request
