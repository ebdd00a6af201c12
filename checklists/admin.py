from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from .models import ChecklistRun, ChecklistTemplate, RunItem, Schedule, TemplateItem


class TemplateItemInline(admin.TabularInline):
    model = TemplateItem
    extra = 0
    fields = (
        "order",
        "section",
        "text",
        "required",
        "runbook",
        "runbook_url",
        "expected_evidence",
        "health_check",
    )
    autocomplete_fields = ()
    raw_id_fields = ("runbook",)


class ScheduleInline(admin.TabularInline):
    model = Schedule
    extra = 0


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(AuditedModelAdmin):
    list_display = ("name", "is_active", "offers_handoff", "updated_at")
    list_filter = ("is_active", "offers_handoff")
    search_fields = ("name", "description", "items__text")
    inlines = [TemplateItemInline, ScheduleInline]


@admin.register(Schedule)
class ScheduleAdmin(AuditedModelAdmin):
    list_display = ("template", "time_of_day", "days_of_week", "timezone", "due_within", "enabled")
    list_filter = ("enabled", "timezone", "template")
    search_fields = ("template__name",)
    list_select_related = ("template",)


class RunItemInline(admin.TabularInline):
    model = RunItem
    extra = 0
    fields = (
        "order",
        "text",
        "required",
        "state",
        "ticked_by",
        "ticked_at",
        "automatic",
        "na_reason",
        "note",
    )
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ChecklistRun)
class ChecklistRunAdmin(AuditedModelAdmin):
    list_display = (
        "title",
        "status",
        "slot",
        "created_at",
        "due_at",
        "signed_off_by",
        "signed_off_at",
    )
    list_filter = ("status", "template")
    search_fields = ("title", "signed_off_by__username", "started_by__username")
    date_hierarchy = "created_at"
    list_select_related = ("signed_off_by",)
    readonly_fields = (
        "template",
        "schedule",
        "slot",
        "created_at",
        "started_by",
        "signed_off_by",
        "signed_off_at",
    )
    inlines = [RunItemInline]
