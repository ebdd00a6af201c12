from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from .models import Check, CheckResult, CheckRollup, CheckStateChange, MaintenanceWindow
from .services import mask_config


@admin.register(Check)
class CheckAdmin(AuditedModelAdmin):
    def audit_snapshot(self, obj) -> dict:
        # DSNs, passwords and headers stay out of the audit log (as in the console's forms).
        data = super().audit_snapshot(obj)
        data["config"] = mask_config(data.get("config"))
        return data

    list_display = (
        "name",
        "service",
        "kind",
        "state",
        "last_checked_at",
        "last_latency_ms",
        "enabled",
        "queue",
    )
    list_filter = ("kind", "state", "enabled", "opens_incident", "service", "queue")
    search_fields = ("name", "service__name", "last_message")
    list_select_related = ("service",)
    readonly_fields = (
        "state",
        "state_changed_at",
        "last_checked_at",
        "last_message",
        "last_latency_ms",
        "pending_state",
        "pending_count",
        "next_due_at",
        "lease_until",
        "lease_token",
        "heartbeat_token",
        "last_ping_at",
        "last_ping_failed",
        "last_details",
        "recent_latencies",
    )


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(AuditedModelAdmin):
    list_display = (
        "__str__",
        "service",
        "check_ref",
        "starts_at",
        "ends_at",
        "reason",
        "created_by",
    )
    list_filter = ("service",)
    search_fields = ("reason", "service__name", "check_ref__name")
    raw_id_fields = ("check_ref",)
    date_hierarchy = "starts_at"


class _ReadOnly(AuditedModelAdmin):
    """Written by the workers only; deleting (clean-up) is audited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CheckStateChange)
class CheckStateChangeAdmin(_ReadOnly):
    list_display = ("check_ref", "changed_at", "from_state", "to_state", "silenced", "message")
    list_filter = ("to_state", "from_state", "silenced")
    search_fields = ("check_ref__name", "message")
    list_select_related = ("check_ref__service",)
    date_hierarchy = "changed_at"


@admin.register(CheckResult)
class CheckResultAdmin(_ReadOnly):
    list_display = ("check_ref", "checked_at", "state", "latency_ms", "message")
    list_filter = ("state",)
    search_fields = ("check_ref__name", "message")
    list_select_related = ("check_ref__service",)
    show_full_result_count = False  # millions of rows: no COUNT(*) per page


@admin.register(CheckRollup)
class CheckRollupAdmin(_ReadOnly):
    list_display = (
        "check_ref",
        "hour",
        "count",
        "ok_count",
        "latency_min_ms",
        "latency_avg_ms",
        "latency_max_ms",
    )
    search_fields = ("check_ref__name",)
    list_select_related = ("check_ref__service",)
