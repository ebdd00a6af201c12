from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import dashboard, live, services
from .forms import ApiTokenForm, ProfileForm
from .live import live_page
from .models import ApiToken
from .roles import has_capability, requires


@requires("read")
@live_page(*live.ALL_AREAS, regions=("dashboard-panels",))
def dashboard_view(request: HttpRequest) -> HttpResponse:
    return render(request, "opsconsole/dashboard.html", {"panels": dashboard.render_panels(request)})


@requires("read")
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        services.user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, "Profile saved.")
        return redirect("profile")
    can_manage = has_capability(request.user, "users.manage")
    return render(request, "opsconsole/profile.html", {"form": form, "perms_users_manage": can_manage})


@requires("users.manage")
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        token, new_token = services.api_token_create(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Token “{token.name}” created. Copy it now: it is not shown again.")
    tokens = ApiToken.objects.select_related("user")[:200]
    return render(request, "opsconsole/api_tokens.html", {"form": form, "tokens": tokens, "new_token": new_token})


@require_POST
@requires("users.manage")
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    services.api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api_tokens")
