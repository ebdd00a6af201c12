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
from .forms import OverrideForm, RotationForm
from .models import EscalationPolicy, Override, Rotation
from .policy_forms import Choices, policy_forms


def _rotation_form(rotation: Rotation) -> RotationForm:
    members = "\n".join(m.user.username for m in rotation.members.all())
    initial = {name: getattr(rotation, name) for name in services.ROTATION_FIELDS if name != "name"}
    return RotationForm(initial=initial | {"members": members}, auto_id=f"rs{rotation.pk}_%s")


def _page_context(request: HttpRequest, *, only: int | None = None, bound: tuple | None = None) -> dict:
    """The page's rotations with their forms (`bound`: (rotation pk, form name, form
    with errors) replaces one form); `only`: just that rotation."""
    can_edit = has_capability(request.user, "schedule.edit")
    rotations = selectors.rotations_overview(rotation_ids=[only] if only else None)
    for rotation in rotations:
        rotation.override_form = OverrideForm(auto_id=f"r{rotation.pk}_%s")
        rotation.settings_form = _rotation_form(rotation) if can_edit else None
        if bound is not None and bound[0] == rotation.pk:
            setattr(rotation, bound[1], bound[2])
    return {
        "rotations": rotations,
        "can_edit": can_edit,
        "can_write_handoff": has_capability(request.user, "handoff.write"),
        "rotation": rotations[0] if rotations else None,
        **_feed_context(request.user),
    }


def _feed_context(user, feed_url: str = "") -> dict:
    feed = selectors.user_live_feed(user)
    return {"feed_url": feed_url, "has_feed": feed is not None, "live_feed": feed}


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
    form = OverrideForm(request.POST, auto_id=f"r{pk}_%s")
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


@requires("read")
def policies(request: HttpRequest, bound: tuple | None = None) -> HttpResponse:
    """Each policy with its levels; for Managers its form and levels formset
    (`bound`: (policy pk or None, form, formset) with errors, shown in place)."""
    can_edit = has_capability(request.user, "schedule.edit")
    items = selectors.policies_overview()
    new_forms = None
    if can_edit:
        choices = Choices()
        for policy in items:
            policy.form, policy.formset = policy_forms(choices=choices, policy=policy)
            if bound is not None and bound[0] == policy.pk:
                policy.form, policy.formset = bound[1], bound[2]
        new_forms = bound[1:] if bound is not None and bound[0] is None else policy_forms(choices=choices)
    context = {"policies": items, "can_edit": can_edit, "new_form": new_forms[0] if new_forms else None}
    context["new_formset"] = new_forms[1] if new_forms else None
    return render(request, "oncall/policies.html", context)


@require_POST
@requires("schedule.edit")
def policy_save(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    policy = get_object_or_404(EscalationPolicy, pk=pk) if pk else None
    form, formset = policy_forms(choices=Choices(), policy=policy, data=request.POST)
    if form.is_valid() and formset.is_valid():
        data = {k: form.cleaned_data[k] for k in ("name", "is_default", "services", "version")}
        try:
            saved = escalation.policy_save(actor=request.user, policy=policy, levels=formset.levels(), **data)
            messages.success(request, f"Saved the escalation policy “{saved.name}”.")
            return redirect(reverse("oncall:policies") + f"#policy-{saved.pk}")
        except ValidationError as exc:
            form.add_error(None, exc)
    return policies(request, bound=(pk, form, formset))


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
    action = request.POST.get("action") if request.method == "POST" else None
    context = None
    if action == "create":
        raw = services.feed_create(actor=request.user)
        context = _feed_context(request.user, request.build_absolute_uri(reverse("oncall:feed", args=[raw])))
    elif action == "revoke":
        services.feed_revoke(actor=request.user)
        messages.success(request, "Your calendar feed is revoked: its address no longer works.")
        return redirect("oncall:my_feed")
    elif request.method == "POST":
        return HttpResponse("Unknown action: use create or revoke.", status=400, content_type="text/plain")
    return render(request, "oncall/feed.html", context or _feed_context(request.user))


@require_GET
def feed(request: HttpRequest, token: str) -> HttpResponse:
    """Public on purpose (calendar apps cannot sign in): the unguessable token is
    the credential; a wrong or revoked one is a 404 like any unknown page."""
    found = selectors.live_feed(token)
    if found is None:
        raise Http404("No such calendar feed.")
    now = timezone.now()
    services.feed_touch(found, now)
    shifts = selectors.user_shifts(found.user, now - datetime.timedelta(days=ical.PAST_DAYS), services.horizon(now))
    response = HttpResponse(ical.build(found.user, shifts, now), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="oncall.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
