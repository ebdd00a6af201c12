"""Auto-remediation: a health check bound to an action the console runs by
itself when the check turns critical.

The trigger comes from healthchecks' state-change hook (registered in
RunbooksConfig.ready(); healthchecks sits below runbooks and never imports
it): the listener only schedules `runbooks.tasks.auto_remediate` after the
state change commits. That task decides under a row lock on the binding, so
the cooldown and the hourly maximum hold when two workers race (each waits
for the other's decision and then sees its run); the run itself is an
ordinary ActionRun on the worker path (idempotency key, late ack, allowlist
checked again right before the call). One state change starts at most one
run: ActionRun.trigger is unique.

Safety: a non-destructive action may be bound by whoever edits checks; a
destructive one only with the pre-approval of a Manager ("remediation.preapprove"),
whose name and time are kept on the binding and copied onto each run as its approval.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from opsconsole import audit
from opsconsole.roles import check_capability, has_capability

from .actions import REGISTRY, ActionError
from .execution import _enqueue, _timeline
from .models import ActionRun, RemediationBinding

AStatus = ActionRun.Status


def binding_save(
    *,
    actor,
    check,
    action: str,
    params: dict,
    cooldown_seconds: int,
    max_per_hour: int,
    enabled: bool = True,
    preapprove: bool = False,
) -> RemediationBinding:
    """Validate everything first (ValidationError, nothing written), then write and audit.

    A destructive action needs `preapprove` from someone holding
    remediation.preapprove. An approval survives edits that keep the same action
    and parameters (e.g. a new cooldown); changing what runs needs a new one.
    """
    check_capability(actor, "config.edit")
    spec = REGISTRY.get(action)
    if spec is None:
        raise ValidationError({"action": f"Unknown action {action!r}."})
    try:
        params = spec.clean(params)  # the allowlist, now; the worker checks it again
    except ValidationError as exc:
        raise ValidationError({"params": exc.messages}) from exc
    if not 0 <= cooldown_seconds <= 7 * 86400:
        raise ValidationError({"cooldown_seconds": "Between 0 and 604800 seconds."})
    if not 1 <= max_per_hour <= 60:
        raise ValidationError({"max_per_hour": "Between 1 and 60."})
    destructive = spec.is_destructive(params)
    now = timezone.now()
    with transaction.atomic():
        binding = RemediationBinding.objects.select_for_update().filter(check_ref=check).first()
        before = _snapshot(binding) if binding else None
        same_action = binding is not None and binding.action == action and binding.params == params
        approved_by, approved_at = (binding.approved_by, binding.approved_at) if same_action else (None, None)
        if preapprove:
            if not has_capability(actor, "remediation.preapprove"):
                raise ValidationError({"preapprove": "Only a Manager may pre-approve an automatic action."})
            approved_by, approved_at = actor, now
        if destructive and approved_by is None:
            raise ValidationError(
                {
                    "preapprove": f"“{spec.label}” is destructive: it runs by itself only with a Manager's "
                    "pre-approval. Ask a Manager to tick “Pre-approve” and save."
                }
            )
        if not destructive:
            approved_by = approved_at = None  # nothing to approve; no stale approval kept
        binding = binding or RemediationBinding(check_ref=check)
        binding.action, binding.params, binding.destructive = action, params, destructive
        binding.cooldown_seconds, binding.max_per_hour, binding.enabled = cooldown_seconds, max_per_hour, enabled
        binding.approved_by, binding.approved_at, binding.updated_by = approved_by, approved_at, actor
        binding.save()
        audit.record(actor, "runbooks.remediation_bind", binding, before=before, after=_snapshot(binding))
    return binding


def binding_delete(*, actor, check) -> bool:
    check_capability(actor, "config.edit")
    with transaction.atomic():
        binding = RemediationBinding.objects.select_for_update().filter(check_ref=check).first()
        if binding is None:
            return False
        audit.record(actor, "runbooks.remediation_unbind", binding, before=_snapshot(binding))
        binding.delete()
    return True


def _snapshot(binding: RemediationBinding) -> dict:
    return {
        "check": binding.check_ref_id,
        "action": binding.action,
        "params": binding.params,
        "destructive": binding.destructive,
        "enabled": binding.enabled,
        "cooldown_seconds": binding.cooldown_seconds,
        "max_per_hour": binding.max_per_hour,
        "approved_by": binding.approved_by_id,
        "approved_at": binding.approved_at.isoformat() if binding.approved_at else None,
    }


# --- the trigger ------------------------------------------------------------------


def on_state_change(changes: list) -> None:
    """healthchecks' listener (inside its transaction): schedule a task per
    change to critical of a check with an enabled binding. One query."""
    critical = {c.check_ref_id: c for c in changes if c.to_state == "critical"}
    if not critical:
        return
    bound = RemediationBinding.objects.filter(check_ref_id__in=list(critical), enabled=True)
    change_ids = [critical[check_id].pk for check_id in bound.values_list("check_ref_id", flat=True)]
    if change_ids:
        from .tasks import auto_remediate

        transaction.on_commit(lambda: [auto_remediate.delay(pk) for pk in change_ids])


def auto_remediate(change_id: int) -> str:
    """Decide and queue one run for a change to critical. Safe to run twice."""
    from healthchecks.incident_hook import open_or_update_incident
    from healthchecks.models import CheckStateChange

    change = CheckStateChange.objects.select_related("check_ref").filter(pk=change_id).first()
    if change is None or change.to_state != "critical" or change.silenced:
        return "not a critical change"
    check = change.check_ref
    if check.opens_incident:
        # The incident task may not have run yet: opening is idempotent (dedup
        # key), and doing it here lets the run land on the incident's timeline.
        open_or_update_incident(change.pk)
    incident = _open_incident(check)
    with transaction.atomic():
        binding = RemediationBinding.objects.select_for_update().filter(check_ref=check, enabled=True).first()
        if binding is None:
            return "no binding"
        if ActionRun.objects.filter(trigger=change).exists():
            return "already triggered"
        now = timezone.now()
        reason = _limit_reached(binding, now)
        spec = REGISTRY.get(binding.action)
        params, preview = binding.params, ""
        if reason is None and spec is None:
            reason = f"unknown action {binding.action!r}"
        if reason is None:
            try:
                params = spec.clean(binding.params)  # settings (the allowlist) may have changed
                if spec.prepare is not None:
                    params = spec.prepare(params)
                preview = spec.preview(params)
            except ValidationError as exc:
                reason = "not allowed: " + " ".join(exc.messages)
            except ActionError as exc:
                reason = f"dry run failed: {exc}"
        if reason is None and spec.is_destructive(params) and binding.approved_by_id is None:
            reason = "destructive and not pre-approved"
        if reason is not None:
            return _skip(binding, change, incident, reason, now)
        destructive = spec.is_destructive(params)
        run = ActionRun.objects.create(
            check_ref=check,
            incident=incident,
            trigger=change,
            action=spec.key,
            params=params,
            destructive=destructive,
            dry_run=preview,
            status=AStatus.QUEUED,
            requested_at=now,
            # The Manager's pre-approval is this run's approval (four eyes held at bind time).
            approved_by=binding.approved_by if destructive else None,
            approved_at=binding.approved_at if destructive else None,
        )
        audit.record(
            None,
            "runbooks.auto_remediation",
            run,
            after={
                "check": check.pk,
                "change": change.pk,
                "action": spec.key,
                "params": params,
                "dry_run": preview,
                "preapproved_by": binding.approved_by_id if destructive else None,
            },
        )
        approval = f" (pre-approved by {binding.approved_by})" if destructive else ""
        _timeline(
            incident,
            f"Auto-remediation for check **{check.name}**: {spec.label} — {preview}{approval}.",
            kind="remediation",
            data={"action_run": run.pk, "action": spec.key, "check": check.pk},
        )
        _enqueue(run)
    return "queued"


def _limit_reached(binding: RemediationBinding, now: datetime.datetime) -> str | None:
    runs = ActionRun.objects.filter(check_ref_id=binding.check_ref_id, trigger__isnull=False)
    last = runs.order_by("-requested_at").values_list("requested_at", flat=True).first()
    if last is not None and (now - last).total_seconds() < binding.cooldown_seconds:
        ago = int((now - last).total_seconds())
        return f"cooldown: the last run was {ago} s ago (cooldown {binding.cooldown_seconds} s)"
    hour = runs.filter(requested_at__gt=now - datetime.timedelta(hours=1)).count()
    if hour >= binding.max_per_hour:
        return f"at most {binding.max_per_hour} run(s) per hour, {hour} in the last hour"
    return None


def _skip(binding, change, incident, reason: str, now) -> str:
    RemediationBinding.objects.filter(pk=binding.pk).update(last_skipped_at=now, last_skip_reason=reason[:200])
    audit.record(None, "runbooks.auto_remediation_skip", binding, after={"change": change.pk, "reason": reason[:200]})
    _timeline(
        incident,
        f"Auto-remediation for check **{change.check_ref.name}** not run: {reason}.",
        kind="remediation",
        data={"check": change.check_ref_id, "skipped": True},
    )
    return f"skipped: {reason}"


def _open_incident(check):
    from incidents.models import Incident

    return Incident.objects.open().filter(dedup_key=f"check:{check.pk}").first()
