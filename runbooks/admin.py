from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from .models import ActionRun, Execution, RemediationBinding, Runbook, RunbookStep, RunbookVersion, StepRun


@admin.register(Runbook)
class RunbookAdmin(AuditedModelAdmin):
    list_display = ("title", "current_version", "source", "updated_at")
    search_fields = ("title", "symptoms", "source")
    filter_horizontal = ("services",)
    readonly_fields = ("current_version",)
    fields = ("title", "symptoms", "services", "tags", "source", "current_version")


class RunbookStepInline(admin.TabularInline):
    model = RunbookStep
    extra = 0
    fields = ("order", "title", "command", "action", "action_params")
    readonly_fields = fields
    can_delete = False


@admin.register(RunbookVersion)
class RunbookVersionAdmin(AuditedModelAdmin):
    """Versions are history: read-only here (edit a runbook to write a new one)."""

    list_display = ("runbook", "number", "created_by", "created_at")
    list_filter = ("runbook",)
    inlines = [RunbookStepInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


class StepRunInline(admin.TabularInline):
    model = StepRun
    extra = 0
    fields = ("order", "step", "state", "note", "by", "at")
    readonly_fields = fields
    can_delete = False


@admin.register(Execution)
class ExecutionAdmin(AuditedModelAdmin):
    list_display = ("runbook", "version", "status", "started_by", "started_at", "incident")
    list_filter = ("status",)
    readonly_fields = ("runbook", "version", "incident", "check_ref", "started_by", "started_at", "finished_at")
    inlines = [StepRunInline]


@admin.register(ActionRun)
class ActionRunAdmin(AuditedModelAdmin):
    list_display = ("action", "status", "destructive", "requested_by", "approved_by", "requested_at")
    list_filter = ("status", "action", "destructive")
    readonly_fields = [f.name for f in ActionRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RemediationBinding)
class RemediationBindingAdmin(AuditedModelAdmin):
    """Read-only: a binding is changed on the check's page, where a destructive
    action's pre-approval is checked (the admin would bypass that rule)."""

    list_display = ("check_ref", "action", "enabled", "cooldown_seconds", "max_per_hour", "approved_by", "updated_at")
    list_filter = ("enabled", "destructive")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
