from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import F

from opsconsole.admin import AuditedModelAdmin

from . import services
from .models import (
    CalendarFeed,
    EscalationLevel,
    EscalationPolicy,
    EscalationStep,
    Handoff,
    HandoffItem,
    IncidentEscalation,
    Override,
    PolicyService,
    Rotation,
    RotationMember,
    Shift,
)


class RotationMemberInline(admin.TabularInline):
    model = RotationMember
    extra = 1
    fields = ("position", "user")
    ordering = ("position",)


@admin.register(Rotation)
class RotationAdmin(AuditedModelAdmin):
    list_display = ("name", "shift_length", "handoff_time", "timezone", "materialised_until")
    list_filter = ("timezone", "shift_length", "services")
    search_fields = ("name", "description")
    filter_horizontal = ("services",)
    readonly_fields = ("materialised_until",)
    inlines = [RotationMemberInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Members or settings changed: the shifts are computed, so recompute them.
        services.rotation_materialise(rotation=form.instance)


class OverrideAdminForm(forms.ModelForm):
    """Adding an override in the admin goes through services.override_create,
    the one function that decides about overlaps (under the rotation's lock)."""

    class Meta:
        model = Override
        fields = ["rotation", "user", "starts_at", "ends_at", "kind", "reason"]

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.instance = services.override_create(
                actor=self.actor,
                rotation=data["rotation"],
                user=data["user"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                kind=data["kind"],
                reason=data.get("reason", ""),
            )
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        return data


@admin.register(Override)
class OverrideAdmin(AuditedModelAdmin):
    form = OverrideAdminForm
    list_display = ("rotation", "user", "kind", "starts_at", "ends_at", "reason")
    list_filter = ("rotation", "kind")
    list_select_related = ("rotation", "user")
    date_hierarchy = "starts_at"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def has_change_permission(self, request, obj=None):
        return False  # remove and add again: every change goes through the service

    def save_model(self, request, obj, form, change):
        pass  # created and audited by services.override_create in the form's clean()

    def delete_model(self, request, obj):
        services.override_delete(actor=request.user, override=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.override_delete(actor=request.user, override=obj)


@admin.register(Shift)
class ShiftAdmin(AuditedModelAdmin):
    """Read-only: shifts are computed from rotations and overrides."""

    list_display = ("rotation", "user", "starts_at", "ends_at", "source")
    list_filter = ("rotation", "user", "source")
    list_select_related = ("rotation", "user")
    search_fields = ("user__username", "user__first_name", "user__last_name", "rotation__name")
    date_hierarchy = "starts_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CalendarFeed)
class CalendarFeedAdmin(AuditedModelAdmin):
    list_display = ("user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    fields = ("user", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("user", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False  # people make their own (the token is shown to them once)


class PolicyServiceInline(admin.TabularInline):
    model = PolicyService
    extra = 1


class EscalationLevelInline(admin.StackedInline):
    model = EscalationLevel
    extra = 1
    fields = ("position", "name", "rotation", "users", "wait_minutes")
    filter_horizontal = ("users",)
    ordering = ("position",)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedModelAdmin):
    list_display = ("name", "is_default", "created_at")
    search_fields = ("name", "description")
    inlines = [PolicyServiceInline, EscalationLevelInline]

    def save_model(self, request, obj, form, change):
        # An admin edit is a new version too: a policy form drawn before it is refused.
        if change:
            obj.version = F("version") + 1
        super().save_model(request, obj, form, change)
        obj.refresh_from_db(fields=["version"])


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    can_delete = False
    readonly_fields = ("position", "level_name", "due_at", "paged_at", "late", "recipients")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(IncidentEscalation)
class IncidentEscalationAdmin(AuditedModelAdmin):
    """Read-only: the clock is run by the escalation sweep and stopped by acknowledging."""

    list_display = ("incident", "policy", "current_position", "next_due_at", "stopped_reason")
    list_filter = ("policy", "stopped_reason")
    list_select_related = ("incident", "policy")
    inlines = [EscalationStepInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HandoffItemInline(admin.TabularInline):
    model = HandoffItem
    extra = 0
    fields = ("position", "title", "severity", "status", "notes", "closed")
    readonly_fields = ("title", "severity", "status")


@admin.register(Handoff)
class HandoffAdmin(AuditedModelAdmin):
    """Repairs only (close a stuck item, fix a note): handoffs are written and
    confirmed on the console's pages."""

    list_display = ("rotation", "outgoing", "incoming", "submitted_at", "status")
    list_filter = ("rotation", "status")
    list_select_related = ("rotation", "outgoing", "incoming")
    date_hierarchy = "submitted_at"
    readonly_fields = (
        "rotation",
        "outgoing",
        "incoming",
        "period_start",
        "period_end",
        "status",
        "system_status",
        "scheduled",
        "activity",
        "submitted_at",
        "acknowledged_at",
        "acknowledged_by",
        "confirmations",
        "question",
        "questioned_at",
        "questioned_by",
    )
    inlines = [HandoffItemInline]

    def has_add_permission(self, request):
        return False
