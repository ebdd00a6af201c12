"""The dead-letter list: notifications that gave up, and their Replay button."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from opsconsole.http import HtmxHttpRequest
from opsconsole.roles import has_capability, requires

from . import selectors, services, visibility
from .models import Delivery


@requires("read")
def dead_letters(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.dead_letters(), 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "deliveries": page.object_list,
        # Restricted subjects: content only for people who may see them.
        "readable": visibility.readable_deliveries(request.user, page.object_list),
        "can_replay": has_capability(request.user, "config.edit"),
    }
    return render(request, "notifications/dead_letters.html", context)


@require_POST
@requires("config.edit")
def replay(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(Delivery, pk=pk)
    try:
        services.delivery_replay(actor=request.user, delivery=delivery)
        message, ok = (
            f"Replaying {delivery.event} to {delivery.target_display}: queued for a fresh attempt.",
            True,
        )
    except services.ReplayRefused as exc:
        message, ok = str(exc), False
    if request.htmx:
        context = {"delivery": delivery, "replay_message": message, "replay_ok": ok}
        return render(request, "notifications/dead_letters.html#replayed", context)
    (messages.success if ok else messages.warning)(request, message)
    return redirect("notifications:dead_letters")
