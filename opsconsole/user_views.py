"""The Users page (Admins): list and search, invite, roles, deactivate, reset two-factor."""

import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import users as svc
from .models import User
from .pickers import PICKER_LIMIT, SOURCES
from .roles import requires
from .user_forms import InviteForm, RolesForm


@requires("users.manage")
def user_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    page = Paginator(svc.user_list(query), svc.USER_LIST_LIMIT).get_page(request.GET.get("page"))
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = svc.user_invite(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, f"Invited {user.username}: an e-mail to {user.email} lets them choose a password."
            )
            return redirect("users")
    rows = [(user, svc.roles_of(user)) for user in page.object_list]
    status = 400 if form.is_bound else 200
    return render(
        request, "opsconsole/users.html", {"page": page, "rows": rows, "q": query, "form": form}, status=status
    )


@requires("users.manage")
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User.objects.prefetch_related("groups"), pk=pk)
    form = RolesForm(request.POST or None, initial={"roles": [r.value for r in svc.roles_of(person)]})
    if request.method == "POST" and form.is_valid():
        try:
            svc.user_set_roles(actor=request.user, user=person, roles=form.cleaned_data["roles"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Roles of {person.username} saved.")
            return redirect("user_detail", pk=pk)
    status = 400 if form.is_bound else 200
    return render(request, "opsconsole/user_detail.html", {"person": person, "form": form}, status=status)


@require_POST
@requires("users.manage")
def user_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User, pk=pk)
    active = request.POST.get("active") == "1"
    try:
        svc.user_set_active(actor=request.user, user=person, active=active)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{person.username} {'reactivated' if active else 'deactivated'}.")
    return redirect("user_detail", pk=pk)


@require_POST
@requires("users.manage")
def user_reset_mfa(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User, pk=pk)
    removed = svc.user_reset_mfa(actor=request.user, user=person)
    if removed:
        messages.success(
            request, f"Two-factor reset for {person.username}: they sign in with their password and set it up again."
        )
    else:
        messages.info(request, f"{person.username} had no two-factor authentication set up.")
    return redirect("user_detail", pk=pk)


@require_GET
@requires("read")
def picker_search(request: HttpRequest, source: str) -> HttpResponse:
    """The picker's matches as an htmx partial: at most PICKER_LIMIT, one query."""
    if source not in SOURCES:
        raise Http404("No such picker.")
    query = request.GET.get("q") or next((v for k, v in request.GET.items() if k.endswith("__search")), "")
    field = request.GET.get("field", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", field):
        return HttpResponse("Unknown field.", status=400)
    found = list(SOURCES[source].search(query, limit=PICKER_LIMIT + 1))
    context = {
        "found": found[:PICKER_LIMIT],
        "more": len(found) > PICKER_LIMIT,
        "limit": PICKER_LIMIT,
        "field": field,
        "multiple": request.GET.get("multiple") == "1",
        "q": query,
    }
    return render(request, "opsconsole/_picker_results.html", context)
