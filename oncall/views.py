from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_POST

from opsconsole.roles import has_capability, requires

from . import selectors, services
from .forms import ShiftForm, user_choices
from .models import Rotation, Shift


def _page_context(request: HttpRequest, *, only: int | None = None, bound: tuple[int, ShiftForm] | None = None) -> dict:
    """The page's rotations, each with its add-shift form (`bound` replaces one
    rotation's form by a form with errors); `only`: just that rotation."""
    can_edit = has_capability(request.user, "schedule.edit")
    rotations = selectors.rotations_overview(rotation_ids=[only] if only else None)
    choices = user_choices() if can_edit else []
    for rotation in rotations:
        if bound is not None and bound[0] == rotation.pk:
            rotation.shift_form = bound[1]
        else:
            rotation.shift_form = ShiftForm(user_choices=choices, auto_id=f"r{rotation.pk}_%s")
    return {
        "rotations": rotations,
        "can_edit": can_edit,
        "rotation": rotations[0] if rotations else None,
    }


@requires("read")
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "oncall/index.html", _page_context(request))


def _respond(request: HttpRequest, rotation: Rotation, notice: str, form: ShiftForm | None = None) -> HttpResponse:
    """htmx: only the rotation's block, with the notice or the form's errors.
    A plain form post: back to the page, or the page again with the errors."""
    bound = (rotation.pk, form) if form is not None and form.errors else None
    if request.htmx:
        context = _page_context(request, only=rotation.pk, bound=bound)
        return render(request, "oncall/index.html#rotation", context | {"notice": "" if bound else notice})
    if bound:
        return render(request, "oncall/index.html", _page_context(request, bound=bound))
    messages.success(request, notice)
    return redirect(reverse("oncall:index") + f"#rotation-{rotation.pk}")


@require_POST
@requires("schedule.edit")
def shift_add(request: HttpRequest, pk: int) -> HttpResponse:
    rotation = get_object_or_404(Rotation, pk=pk)
    form = ShiftForm(request.POST, user_choices=user_choices(), auto_id=f"r{pk}_%s")
    notice = ""
    if form.is_valid():
        try:
            shift = services.shift_create(actor=request.user, rotation=rotation, **form.cleaned_data)
            starts = date_format(timezone.localtime(shift.starts_at), "D d M Y H:i")
            notice = f"Added {shift.user}'s shift from {starts} ({shift.duration_label})."
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, rotation, notice, form)


@require_POST
@requires("schedule.edit")
def shift_delete(request: HttpRequest, pk: int) -> HttpResponse:
    shift = get_object_or_404(Shift.objects.select_related("rotation", "user"), pk=pk)
    services.shift_delete(actor=request.user, shift=shift)
    return _respond(request, shift.rotation, f"Removed {shift.user}'s shift.")
