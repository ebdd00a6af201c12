import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_POST

from opsconsole.http import HtmxHttpRequest
from opsconsole.roles import has_capability, requires

from . import escalation, ical, selectors, services
from .forms import OverrideForm, PolicyForm, RotationForm, policy_levels_text, user_choices
from .models import EscalationPolicy, Override, Rotation


def _rotation_form(rotation: Rotation) -> RotationForm:
    members = "\n".join(m.user.username for m in rotation.members.all())
    initial = {name: getattr(rotation, name) for name in services.ROTATION_FIELDS if name != "name"}
    return RotationForm(initial=initial | {"members": members}, auto_id=f"rs{rotation.pk}_%s")


def _page_context(request: HttpRequest, *, only: int | None = None, bound: tuple | None = None) -> dict:
    """The page's rotations with their forms (`bound`: (rotation pk, form name, form
    with errors) replaces one form); `only`: just that rotation."""
    can_edit = has_capability(request.user, "schedule.edit")
    rotations = selectors.rotations_overview(rotation_ids=[only] if only else None)
    choices = user_choices() if can_edit else []
    for rotation in rotations:
        rotation.override_form = OverrideForm(user_choices=choices, auto_id=f"r{rotation.pk}_%s")
        rotation.settings_form = _rotation_form(rotation) if can_edit else None
        if bound is not None and bound[0] == rotation.pk:
            setattr(rotation, bound[1], bound[2])
    return {
        "rotations": rotations,
        "can_edit": can_edit,
        "rotation": rotations[0] if rotations else None,
        "has_feed": selectors.has_live_feed(request.user),
    }


@requires("read")
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "oncall/index.html", _page_context(request))


def _respond(request: HtmxHttpRequest, rotation: Rotation, notice: str, bound: tuple | None = None) -> HttpResponse:
    """htmx: only the rotation's block, with the notice or the form's errors.
    A plain form post: back to the page, or the page again with the errors."""
    if request.htmx:
        context = _page_context(request, only=rotation.pk, bound=bound)
        return render(request, "oncall/index.html#rotation", context | {"notice": "" if bound else notice})
    if bound:
        return render(request, "oncall/index.html", _page_context(request, bound=bound))
    messages.success(request, notice)
    return redirect(reverse("oncall:index") + f"#rotation-{rotation.pk}")


@require_POST
@requires("schedule.edit")
def override_add(request: HttpRequest, pk: int) -> HttpResponse:
    rotation = get_object_or_404(Rotation, pk=pk)
    form = OverrideForm(request.POST, user_choices=user_choices(), auto_id=f"r{pk}_%s")
    if form.is_valid():
        try:
            override = services.override_create(actor=request.user, rotation=rotation, **form.cleaned_data)
            starts = date_format(timezone.localtime(override.starts_at), "D d M Y H:i")
            return _respond(request, rotation, f"{override.user} covers {rotation.name} from {starts}.")
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, rotation, "", bound=(rotation.pk, "override_form", form))


@require_POST
@requires("schedule.edit")
def override_delete(request: HttpRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override.objects.select_related("rotation", "user"), pk=pk)
    services.override_delete(actor=request.user, override=override)
    return _respond(request, override.rotation, f"Removed {override.user}'s override.")


@require_POST
@requires("schedule.edit")
def rotation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rotation = get_object_or_404(Rotation, pk=pk)
    form = RotationForm(request.POST, auto_id=f"rs{pk}_%s")
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            services.rotation_update(actor=request.user, rotation=rotation, member_ids=data.pop("members"), **data)
            return _respond(request, rotation, f"Saved {rotation.name}; its shifts were recomputed.")
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, rotation, "", bound=(rotation.pk, "settings_form", form))


def _policy_forms(policies: list, bound: tuple | None = None) -> None:
    for policy in policies:
        initial = {
            "name": policy.name,
            "is_default": policy.is_default,
            "services": [s.pk for s in policy.services.all()],
            "levels": policy_levels_text(policy),
        }
        policy.form = PolicyForm(initial=initial, auto_id=f"p{policy.pk}_%s")
        if bound is not None and bound[0] == policy.pk:
            policy.form = bound[1]


@requires("read")
def policies(request: HttpRequest, bound: tuple | None = None) -> HttpResponse:
    can_edit = has_capability(request.user, "schedule.edit")
    items = selectors.policies_overview()
    if can_edit:
        _policy_forms(items, bound)
    new_form = bound[1] if bound is not None and bound[0] is None else PolicyForm(auto_id="pnew_%s")
    context = {"policies": items, "can_edit": can_edit, "new_form": new_form if can_edit else None}
    return render(request, "oncall/policies.html", context)


@require_POST
@requires("schedule.edit")
def policy_save(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    policy = get_object_or_404(EscalationPolicy, pk=pk) if pk else None
    form = PolicyForm(request.POST, auto_id=f"p{pk}_%s" if pk else "pnew_%s")
    if form.is_valid():
        try:
            saved = escalation.policy_save(actor=request.user, policy=policy, **form.cleaned_data)
            messages.success(request, f"Saved the escalation policy “{saved.name}”.")
            return redirect(reverse("oncall:policies") + f"#policy-{saved.pk}")
        except ValidationError as exc:
            form.add_error(None, exc)
    return policies(request, bound=(pk, form))


@requires("read")
def calendar(request: HttpRequest) -> HttpResponse:
    tz = timezone.get_current_timezone()
    weeks = 4
    today = timezone.localdate()
    start = today - datetime.timedelta(days=today.weekday())
    rotations, rows = selectors.calendar(start=start, days=weeks * 7, tz=tz)
    return render(request, "oncall/calendar.html", {"rotations": rotations, "rows": rows, "today": today})


@requires("read")
def my_feed(request: HttpRequest) -> HttpResponse:
    """GET: the person's feed status. POST action=create: a new private address
    (shown once; any older one stops working); action=revoke: no address works."""
    context = {"feed_url": "", "has_feed": selectors.has_live_feed(request.user)}
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "create":
        raw = services.feed_create(actor=request.user)
        url = request.build_absolute_uri(reverse("oncall:feed", args=[raw]))
        context = {"feed_url": url, "has_feed": True}
    elif action == "revoke":
        services.feed_revoke(actor=request.user)
        messages.success(request, "Your calendar feed is revoked: its address no longer works.")
        return redirect("oncall:my_feed")
    elif request.method == "POST":
        return HttpResponse("Unknown action: use create or revoke.", status=400, content_type="text/plain")
    return render(request, "oncall/feed.html", context)


@require_GET
def feed(request: HttpRequest, token: str) -> HttpResponse:
    """Public on purpose (calendar apps cannot sign in): the unguessable token is
    the credential; a wrong or revoked one is a 404 like any unknown page."""
    found = selectors.live_feed(token)
    if found is None:
        raise Http404("No such calendar feed.")
    now = timezone.now()
    shifts = selectors.user_shifts(found.user, now - datetime.timedelta(days=ical.PAST_DAYS), services.horizon(now))
    response = HttpResponse(ical.build(found.user, shifts, now), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="oncall.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
