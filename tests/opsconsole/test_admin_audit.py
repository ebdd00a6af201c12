"""Every admin change form saves (many-to-many fields included) and is audited
with the real before and after. The registry is enumerated, so a new admin
with a many-to-many field cannot be forgotten."""

from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from opsconsole.admin import AuditedModelAdmin
from opsconsole.models import AuditEntry, User
from opsconsole.roles import Role


class _FormFields(HTMLParser):
    """What a browser would post from the admin's change form: every named
    input, select and textarea (checked boxes only), plus the save button."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(name, a.get("value", "on"))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._add(name, a.get("value") or "")
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
            self.options[name] = []
        elif tag == "option" and self._select:
            value = a.get("value", "")
            self.options[self._select].append(value)
            if "selected" in a:
                self._add(self._select, value)
        elif tag == "textarea" and name:
            self._textarea = name
            self._add(name, "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data


def _m2m_admins():
    for model in admin.site._registry:
        m2m = [f.name for f in model._meta.many_to_many]
        if m2m:
            yield pytest.param(model, m2m, id=model._meta.label)


@pytest.fixture
def superuser_client(client, db):
    call_command("seed_demo")
    root = User.objects.create_superuser("root", "root@example.com", "pw-for-tests-1")
    client.force_login(root)
    return client


def test_every_admin_that_can_change_data_is_audited():
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedModelAdmin)
        and (
            model_admin.has_change_permission(_Superuser())
            or model_admin.has_add_permission(_Superuser())
            or model_admin.has_delete_permission(_Superuser())
        )
    ]
    assert unaudited == []


class _Superuser:
    """A request stand-in for the permission hooks: a superuser asks."""

    class user:
        is_active = is_staff = is_superuser = True

        @staticmethod
        def has_perm(perm, obj=None):
            return True


@pytest.mark.parametrize(("model", "m2m"), list(_m2m_admins()))
def test_change_form_saves_many_to_many_fields_and_audits_them(superuser_client, model, m2m):
    instance = model._default_manager.order_by("pk").first()
    assert instance is not None, f"seed_demo makes no {model._meta.label}: add one to its demo data"
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[instance.pk])
    page = superuser_client.get(url)
    assert page.status_code == 200
    form = _FormFields()
    form.feed(page.content.decode())
    chosen = {}
    for name in m2m:
        if name not in form.options:
            continue  # not editable in this admin
        options = [value for value in form.options[name] if value][:2]
        assert options, f"{model._meta.label}.{name} offers nothing to choose"
        form.data[name] = options
        related = model._meta.get_field(name).related_model
        chosen[name] = sorted(str(obj) for obj in related.objects.filter(pk__in=options))
    before = AuditEntry.objects.count()

    response = superuser_client.post(url, {**form.data, "_save": "Save"})

    assert response.status_code == 302, response.content.decode()[:3000]
    assert AuditEntry.objects.count() == before + 1
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry.action == f"{model._meta.label_lower}.admin_change"
    for name, names in chosen.items():
        assert entry.after[name] == names
        assert sorted(str(o) for o in getattr(model._default_manager.get(pk=instance.pk), name).all()) == names


@pytest.mark.django_db
def test_role_change_is_audited_with_the_real_before_and_after(client, make_user):
    root = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    client.force_login(root)
    user = make_user(Role.VIEWER)
    url = reverse("admin:opsconsole_user_change", args=[user.pk])
    form = _FormFields()
    form.feed(client.get(url).content.decode())
    sre = Group.objects.get(name=Role.SRE.value)
    commander = Group.objects.get_or_create(name=Role.INCIDENT_COMMANDER.value)[0]
    for groups, expected_before in [([sre.pk], [Role.VIEWER.value]), ([commander.pk], [Role.SRE.value])]:
        form.data["groups"] = [str(pk) for pk in groups]
        assert client.post(url, {**form.data, "_save": "Save"}).status_code == 302
        entry = AuditEntry.objects.filter(action="opsconsole.user.admin_change").order_by("-seq").first()
        assert entry.before["groups"] == expected_before
        assert entry.after["groups"] == [Group.objects.get(pk=groups[0]).name]
        assert "password" not in entry.after
    assert list(user.groups.values_list("name", flat=True)) == [Role.INCIDENT_COMMANDER.value]
