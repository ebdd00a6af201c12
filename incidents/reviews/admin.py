"""Admin for reviews, through AuditedModelAdmin (admin edits are audited)."""

from django.contrib import admin

from opsconsole.admin import AuditedModelAdmin

from .models import ActionItem, Recurrence, Review, ReviewComment, ReviewVersion


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0
    fields = ("title", "owner", "due_date", "priority", "status", "wont_do_reason", "tracker_url")


@admin.register(Review)
class ReviewAdmin(AuditedModelAdmin):
    list_display = ("incident", "status", "author", "due_date", "required", "version", "updated_at")
    list_filter = ("status", "required")
    search_fields = ("incident__reference", "incident__title")
    raw_id_fields = ("incident", "author", "approved_by", "published_by")
    readonly_fields = ("version", "prefill")
    inlines = [ActionItemInline]


@admin.register(ActionItem)
class ActionItemAdmin(AuditedModelAdmin):
    list_display = ("title", "review", "owner", "due_date", "priority", "status")
    list_filter = ("status", "priority")
    search_fields = ("title", "review__incident__reference")
    raw_id_fields = ("review", "owner")


@admin.register(ReviewVersion)
class ReviewVersionAdmin(AuditedModelAdmin):
    """Versions are history: read-only here."""

    list_display = ("review", "number", "status", "author", "created_at", "reason")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewComment)
class ReviewCommentAdmin(AuditedModelAdmin):
    list_display = ("review", "section", "author", "created_at")
    raw_id_fields = ("review", "author")


@admin.register(Recurrence)
class RecurrenceAdmin(AuditedModelAdmin):
    list_display = ("incident", "earlier", "matched_on", "fix_did_not_hold", "created_at")
    raw_id_fields = ("incident", "earlier", "earlier_review")
