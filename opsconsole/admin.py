from allauth.account import admin as account_admin
from allauth.mfa import admin as mfa_admin
from allauth.socialaccount import admin as socialaccount_admin
from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import models

from . import audit
from .models import ApiToken, AuditEntry, Service, ServiceLink, User
from .redaction import display_url

admin.site.site_header = "Ops Console administration"
admin.site.site_title = "Ops Console admin"

# Field names never copied into the audit log, whatever the model: hashes,
# API secrets, OAuth tokens, TOTP seeds (allauth.mfa keeps them in `data`).
SECRET_FIELDS = frozenset({"password", "token_hash", "secret", "token", "token_secret", "key"})


def _field_value(obj: models.Model, field: models.Field):
    if field.many_to_many:
        # A set of related rows, named as people read them (a user's roles are
        # group names). Read from the database: the admin saves many-to-many
        # fields after the instance (ModelAdmin.save_related).
        if obj.pk is None:
            return []
        return sorted(str(related) for related in getattr(obj, field.name).all())
    return field.value_from_object(obj)


def admin_snapshot(obj: models.Model, exclude: frozenset[str] = frozenset()) -> dict:
    """The audit view of any model: every concrete and many-to-many field,
    JSON-ready (foreign keys as ids, files as names, anything else as text)."""
    opts = obj._meta
    data = {}
    for field in [*opts.concrete_fields, *opts.many_to_many]:
        if field.name in SECRET_FIELDS or field.name in exclude:
            continue
        name = field.attname if field.is_relation and not field.many_to_many else field.name
        data[name] = _field_value(obj, field)
    return audit.to_json(data)


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin writes the audit log too.

    The entry is written after `save_related`, so it holds the many-to-many
    fields (a user's roles) as saved, with the real before and after. Set
    `audit_exclude` or override `audit_snapshot` where a model holds secrets
    beyond SECRET_FIELDS.
    """

    audit_exclude: frozenset[str] = frozenset()

    def audit_snapshot(self, obj) -> dict:
        return admin_snapshot(obj, self.audit_exclude)

    def save_model(self, request, obj, form, change):
        # Read before anything is written; remembered on the request for save_related.
        before = self.audit_snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        pending = getattr(request, "_audit_pending", {})
        pending[id(obj)] = before
        request._audit_pending = pending

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(request, "_audit_pending", {}).pop(id(obj), None)
        action = f"{obj._meta.label_lower}.{'admin_change' if change else 'admin_add'}"
        audit.record(request.user, action, obj, before=before, after=self.audit_snapshot(obj))

    def delete_model(self, request, obj):
        before = self.audit_snapshot(obj)
        audit.record(request.user, f"{obj._meta.label_lower}.admin_delete", obj, before=before)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit.record(
                request.user,
                f"{obj._meta.label_lower}.admin_delete",
                obj,
                before=self.audit_snapshot(obj),
            )
        super().delete_queryset(request, queryset)


def _audit_third_party(model: type[models.Model], admin_class: type[admin.ModelAdmin], **attrs) -> None:
    """Re-register another app's admin with the audit mixin in front: a role's
    permissions, an e-mail address's verification and a sign-in app's secret
    are changed there too. Their admin modules are imported above so that
    they have registered first."""
    admin.site.unregister(model)
    audited = type(f"Audited{admin_class.__name__}", (AuditedModelAdmin, admin_class), attrs)
    admin.site.register(model, audited)


_audit_third_party(Group, auth_admin.GroupAdmin)
_audit_third_party(account_admin.EmailAddress, account_admin.EmailAddressAdmin)
# An authenticator's `data` is its TOTP seed or recovery codes.
_audit_third_party(mfa_admin.Authenticator, mfa_admin.AuthenticatorAdmin, audit_exclude=frozenset({"data"}))
_audit_third_party(socialaccount_admin.SocialApp, socialaccount_admin.SocialAppAdmin)
_audit_third_party(socialaccount_admin.SocialToken, socialaccount_admin.SocialTokenAdmin)
_audit_third_party(
    socialaccount_admin.SocialAccount, socialaccount_admin.SocialAccountAdmin, audit_exclude=frozenset({"extra_data"})
)


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_active", "timezone")
    list_filter = ("groups", "is_active", "is_staff", "timezone")
    fieldsets = DjangoUserAdmin.fieldsets + (("Console", {"fields": ("timezone",)}),)


# A URL typed without its scheme becomes https:// (Django 6's default; 5.2
# still assumes http and warns on every form it builds).
HTTPS_URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class ServiceLinkInline(admin.TabularInline):
    model = ServiceLink
    extra = 1
    formfield_overrides = HTTPS_URL_FIELDS


@admin.register(Service)
class ServiceAdmin(AuditedModelAdmin):
    list_display = ("name", "tier", "owner_team")
    list_filter = ("tier", "owner_team")
    search_fields = ("name", "description", "owner_team")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ServiceLinkInline]
    formfield_overrides = HTTPS_URL_FIELDS

    def audit_snapshot(self, obj) -> dict:
        # The chat webhook URL is a credential: the audit log keeps its display form.
        data = super().audit_snapshot(obj)
        data["webhook_url"] = display_url(obj.webhook_url)
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if not change:
            raw, obj.prefix, obj.token_hash = ApiToken.generate()
            messages.warning(request, f"New token for {obj.user}: {raw} — copy it now, it is not shown again.")
        super().save_model(request, obj, form, change)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by the console, never by hand."""

    list_display = (
        "seq",
        "created_at",
        "actor_label",
        "action",
        "target_type",
        "target_repr",
        "request_id",
    )
    list_filter = ("action", "target_type")
    search_fields = ("actor_label", "action", "target_repr", "target_id", "request_id")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
