from django import forms
from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from .models import Rotation, Shift


class ShiftAdminForm(forms.ModelForm):
    class Meta:
        model = Shift
        fields = ["rotation", "user", "starts_at", "ends_at"]

    def clean(self) -> dict:
        # The admin is for repairs; the page's service is the race-safe path,
        # but the admin must not create overlaps either.
        data = super().clean()
        rotation, starts, ends = data.get("rotation"), data.get("starts_at"), data.get("ends_at")
        if rotation and starts and ends:
            if ends <= starts:
                raise forms.ValidationError("The shift must end after it starts.")
            clash = Shift.objects.filter(rotation=rotation, starts_at__lt=ends, ends_at__gt=starts)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise forms.ValidationError("This shift overlaps another shift of the same rotation.")
        return data


class ShiftInline(admin.TabularInline):
    model = Shift
    extra = 0
    fields = ("user", "starts_at", "ends_at")
    # Read-only here: edits go through the Shift admin (overlap check, audit).
    readonly_fields = ("user", "starts_at", "ends_at")
    can_delete = False
    ordering = ("-starts_at",)
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # add shifts on the on-call page or as Shifts, where overlaps are refused


@admin.register(Rotation)
class RotationAdmin(AuditedModelAdmin):
    list_display = ("name", "timezone", "created_at")
    list_filter = ("timezone", "services")
    search_fields = ("name", "description")
    filter_horizontal = ("services",)
    inlines = [ShiftInline]


@admin.register(Shift)
class ShiftAdmin(AuditedModelAdmin):
    form = ShiftAdminForm
    list_display = ("rotation", "user", "starts_at", "ends_at")
    list_filter = ("rotation", "user")
    list_select_related = ("rotation", "user")
    search_fields = ("user__username", "user__first_name", "user__last_name", "rotation__name")
    date_hierarchy = "starts_at"
