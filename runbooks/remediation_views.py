"""A check's auto-remediation: bind, change or remove the action it runs when it turns critical."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from opsconsole.roles import has_capability, requires

from . import remediation, selectors
from .forms import RemediationForm


def _check(pk: int):
    from healthchecks.models import Check

    return get_object_or_404(Check.objects.select_related("service"), pk=pk)


@requires("config.edit")
def remediation_edit(request: HttpRequest, check_pk: int) -> HttpResponse:
    check = _check(check_pk)
    binding = selectors.binding_for_check(check)
    initial = {}
    if binding is not None:
        initial = {
            "action": binding.action,
            "params": json.dumps(binding.params),
            "cooldown_seconds": binding.cooldown_seconds,
            "max_per_hour": binding.max_per_hour,
            "enabled": binding.enabled,
        }
    form = RemediationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            remediation.binding_save(
                actor=request.user,
                check=check,
                action=data["action"],
                params=data["params"],
                cooldown_seconds=data["cooldown_seconds"],
                max_per_hour=data["max_per_hour"],
                enabled=data["enabled"],
                preapprove=data["preapprove"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Auto-remediation saved.")
            return redirect("healthchecks:detail", pk=check.pk)
    return render(
        request,
        "runbooks/remediation_form.html",
        {
            "check": check,
            "binding": binding,
            "form": form,
            "can_preapprove": has_capability(request.user, "remediation.preapprove"),
        },
    )


@require_POST
@requires("config.edit")
def remediation_delete(request: HttpRequest, check_pk: int) -> HttpResponse:
    check = _check(check_pk)
    if remediation.binding_delete(actor=request.user, check=check):
        messages.success(request, "Auto-remediation removed.")
    return redirect("healthchecks:detail", pk=check.pk)
