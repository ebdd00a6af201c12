from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.forms.models import model_to_dict

from . import audit
from .models import ApiToken, AuditEntry, Service, ServiceLink, User

admin.site.site_header = "Ops Console administration"
admin.site.site_title = "Ops Console admin"


def _admin_snapshot(obj) -> dict:
    data = model_to_dict(obj)
    # Never copy secrets into the audit log.
    for secret in ("password", "token_hash"):
        data.pop(secret, None)
    return audit._normalise(data)


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin writes the audit log too.

    Override `audit_snapshot` where a model holds secrets beyond passwords.
    """

    def audit_snapshot(self, obj) -> dict:
        return _admin_snapshot(obj)

    def save_model(self, request, obj, form, change):
        before = self.audit_snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
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


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_active", "timezone")
    list_filter = ("groups", "is_active", "is_staff", "timezone")
    fieldsets = DjangoUserAdmin.fieldsets + (("Console", {"fields": ("timezone",)}),)


class ServiceLinkInline(admin.TabularInline):
    model = ServiceLink
    extra = 1


@admin.register(Service)
class ServiceAdmin(AuditedModelAdmin):
    list_display = ("name", "tier", "owner_team")
    list_filter = ("tier", "owner_team")
    search_fields = ("name", "description", "owner_team")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [ServiceLinkInline]


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
