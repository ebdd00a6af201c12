from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from opsconsole.admin import AuditedModelAdmin

from . import services
from .models import CalendarFeed, Override, Rotation, RotationMember, Shift


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
    list_display = ("user", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    fields = ("user", "created_at", "revoked_at")
    readonly_fields = ("user", "created_at")

    def has_add_permission(self, request):
        return False  # people make their own (the token is shown to them once)
