from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from . import services
from .models import Delivery


@admin.register(Delivery)
class DeliveryAdmin(AuditedModelAdmin):
    """Outbound notifications. Read-only except for the replay action: a
    delivery's content is what was sent and must stay so."""

    list_display = (
        "created_at",
        "event",
        "channel",
        "target_display",
        "status",
        "attempts",
        "sent_at",
        "service",
    )
    list_filter = ("status", "channel", "event", "service")
    list_select_related = ("service",)
    search_fields = ("target", "event", "last_error")
    date_hierarchy = "created_at"
    # The target is shown as target_display: a webhook URL is a credential.
    readonly_fields = ["target_display", *(f.name for f in Delivery._meta.fields if f.name not in ("id", "target"))]
    exclude = ["target"]
    actions = ["replay_dead_letters"]

    def audit_snapshot(self, obj) -> dict:
        data = super().audit_snapshot(obj)
        data["target"] = obj.target_display
        return data

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay selected dead letters")
    def replay_dead_letters(self, request, queryset):
        replayed = 0
        for delivery in queryset.filter(status=Delivery.Status.DEAD):
            try:
                services.delivery_replay(actor=request.user, delivery=delivery)
                replayed += 1
            except services.ReplayRefused:
                pass
        self.message_user(request, f"{replayed} dead letter(s) queued for a fresh attempt.")
