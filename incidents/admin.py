from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from .models import (
    AlertReceipt,
    AlertSeverityMapping,
    EventStar,
    Incident,
    SeverityLevel,
    TimelineEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written only by the console's services (the timeline is append-only in the database)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SeverityLevel)
class SeverityLevelAdmin(AuditedModelAdmin):
    list_display = (
        "name",
        "definition",
        "examples",
        "ack_target_minutes",
        "resolve_target_minutes",
    )

    def has_delete_permission(self, request, obj=None):
        return False  # incidents point at their level


@admin.register(AlertSeverityMapping)
class AlertSeverityMappingAdmin(AuditedModelAdmin):
    list_display = ("label_value", "severity")
    list_filter = ("severity",)
    search_fields = ("label_value",)


@admin.register(Incident)
class IncidentAdmin(AuditedModelAdmin):
    list_display = (
        "reference",
        "title",
        "severity",
        "status",
        "commander",
        "restricted",
        "declared_at",
    )
    list_filter = ("status", "severity", "restricted", "source_kind", "services")
    search_fields = ("reference", "title", "summary", "dedup_key")
    date_hierarchy = "declared_at"
    readonly_fields = (
        "reference",
        "status",
        "declared_at",
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "closed_at",
        "ack_due_at",
        "resolve_due_at",
        "dedup_key",
        "source_kind",
        "reopen_count",
        "last_activity_at",
        "nudged_activity_at",
        "unassigned_nudged_at",
        "created_by",
    )
    filter_horizontal = ("responders", "services")

    def has_add_permission(self, request):
        return False  # declare from the console so that the id, deadlines and timeline are right

    def has_delete_permission(self, request, obj=None):
        return False  # incidents are records; their timelines cannot be deleted


@admin.register(TimelineEvent)
class TimelineEventAdmin(ReadOnlyAdmin):
    list_display = ("incident", "kind", "author", "author_label", "occurred_at", "recorded_at")
    list_filter = ("kind",)
    search_fields = ("incident__reference", "text", "author__username", "author_label")
    date_hierarchy = "occurred_at"
    list_select_related = ("incident", "author")


@admin.register(EventStar)
class EventStarAdmin(ReadOnlyAdmin):
    list_display = ("event", "starred_by", "starred_at")
    list_select_related = ("event", "event__incident", "starred_by")


@admin.register(AlertReceipt)
class AlertReceiptAdmin(ReadOnlyAdmin):
    list_display = ("fingerprint", "status", "group_key", "incident", "received_at")
    list_filter = ("status",)
    search_fields = ("fingerprint", "group_key")
    list_select_related = ("incident",)


from .reviews import admin as _reviews_admin  # noqa: E402,F401  (registers the review models)
