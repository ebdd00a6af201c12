"""The actions a runbook step (or a failing check) can have the console carry out.

Each action has a parameter form (validation, including the target
allowlist), a dry-run that reads the current state and says exactly what
would change, a destructive flag (destructive actions need a second
person's approval) and an idempotent flag (only idempotent actions are
re-applied when a worker dies mid-action). `run` gets a Reporter to push
progress and output lines that the execution page polls.

Targets are hostile input: every namespace, deployment, host and queue is
checked against the allowlists in settings (RUNBOOK_ALLOWED_*) both when the
form is validated and again in the worker right before it acts.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django import forms
from django.conf import settings


class ActionError(Exception):
    """The action could not be carried out; the message is for the person."""


class Reporter:
    """Where a running action reports progress (0–100) and output lines."""

    def __init__(self, emit: Callable[[int | None, str], None] | None = None):
        self.lines: list[str] = []
        self._emit = emit

    def __call__(self, line: str = "", progress: int | None = None) -> None:
        if line:
            self.lines.append(line)
        if self._emit is not None:
            self._emit(progress, line)


def _allowed(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def check_kube_target(namespace: str, deployment: str | None = None) -> None:
    if not _allowed(namespace, settings.RUNBOOK_ALLOWED_NAMESPACES):
        raise forms.ValidationError(f"Namespace {namespace!r} is not in RUNBOOK_ALLOWED_NAMESPACES.")
    if deployment is not None and not _allowed(f"{namespace}/{deployment}", settings.RUNBOOK_ALLOWED_DEPLOYMENTS):
        raise forms.ValidationError(f"Deployment {namespace}/{deployment} is not in RUNBOOK_ALLOWED_DEPLOYMENTS.")


def check_http_target(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise forms.ValidationError("Only http:// and https:// URLs with a host name.")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if not (_allowed(host, settings.RUNBOOK_ALLOWED_HOSTS) or _allowed(parts.hostname, settings.RUNBOOK_ALLOWED_HOSTS)):
        raise forms.ValidationError(f"Host {host!r} is not in RUNBOOK_ALLOWED_HOSTS.")


def check_queue(key: str) -> None:
    if not _allowed(key, settings.RUNBOOK_ALLOWED_QUEUES):
        raise forms.ValidationError(f"Queue {key!r} is not in RUNBOOK_ALLOWED_QUEUES.")


# --- parameter forms ------------------------------------------------------------

NAME_RE = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class DeploymentForm(forms.Form):
    namespace = forms.RegexField(regex=NAME_RE, max_length=253, error_messages={"invalid": "Not a Kubernetes name."})
    deployment = forms.RegexField(regex=NAME_RE, max_length=253, error_messages={"invalid": "Not a Kubernetes name."})

    def clean(self):
        data = super().clean()
        if "namespace" in data and "deployment" in data:
            check_kube_target(data["namespace"], data["deployment"])
        return data


class ScaleForm(DeploymentForm):
    replicas = forms.IntegerField(min_value=0, max_value=100)


class UndoForm(DeploymentForm):
    revision = forms.IntegerField(min_value=1, required=False, help_text="Blank: the revision before the current one.")


class HttpForm(forms.Form):
    method = forms.ChoiceField(choices=[("GET", "GET"), ("POST", "POST"), ("PUT", "PUT"), ("DELETE", "DELETE")])
    url = forms.URLField(max_length=500, assume_scheme="https")
    body = forms.CharField(required=False, widget=forms.Textarea, max_length=20000, help_text="JSON, optional.")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        check_http_target(url)
        return url

    def clean_body(self) -> str:
        body = self.cleaned_data["body"].strip()
        if body:
            try:
                json.loads(body)
            except ValueError as exc:
                raise forms.ValidationError(f"Not JSON: {exc}") from exc
        return body


class QueueForm(forms.Form):
    queue = forms.CharField(max_length=200)

    def clean_queue(self) -> str:
        queue = self.cleaned_data["queue"]
        check_queue(queue)
        return queue


class RetryForm(forms.Form):
    failed_list = forms.CharField(max_length=200)
    queue = forms.CharField(max_length=200)
    limit = forms.IntegerField(min_value=1, max_value=10000, initial=100)

    def clean(self):
        data = super().clean()
        for key in ("failed_list", "queue"):
            if key in data:
                check_queue(data[key])
        return data


class CheckForm(forms.Form):
    check_id = forms.IntegerField(min_value=1, label="Check")

    def clean_check_id(self) -> int:
        from healthchecks.models import Check

        pk = self.cleaned_data["check_id"]
        if not Check.objects.filter(pk=pk).exists():
            raise forms.ValidationError("No such check.")
        return pk


# --- the registry ---------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    form: type[forms.Form]
    destructive: bool | Callable[[dict], bool]
    idempotent: bool | Callable[[dict], bool]
    preview: Callable[[dict], str]
    run: Callable[[dict, Reporter, str], str]
    # For a redelivered task: has the action already taken effect? (None: cannot tell)
    verify: Callable[[dict], bool | None] | None = None
    # At request time: pin what "now" or "previous" mean, so the approved
    # request is exactly what runs (and re-running it changes nothing more).
    prepare: Callable[[dict], dict] | None = None

    def is_destructive(self, params: dict) -> bool:
        return self.destructive(params) if callable(self.destructive) else self.destructive

    def is_idempotent(self, params: dict) -> bool:
        return self.idempotent(params) if callable(self.idempotent) else self.idempotent

    def clean(self, data: dict) -> dict:
        """Validated parameters (JSON-safe), or forms.ValidationError with every message."""
        form = self.form(data=data)
        if not form.is_valid():
            messages = [
                f"{field}: {error}" if field != "__all__" else str(error)
                for field, errors in form.errors.items()
                for error in errors
            ]
            raise forms.ValidationError(messages)
        return {k: v for k, v in form.cleaned_data.items() if v is not None and v != ""}


def _lazy(module: str, name: str | None) -> Callable | None:
    """`runbooks.<module>.<name>`, imported when first called: the Kubernetes
    client and the Redis connection are only loaded by the worker that acts."""
    if name is None:
        return None

    def call(*args):
        from importlib import import_module

        return getattr(import_module(f"runbooks.{module}"), name)(*args)

    return call


def _external(
    module: str,
    key: str,
    label: str,
    form: type[forms.Form],
    *,
    destructive: bool,
    idempotent: bool,
    run: str,
    preview: str | Callable[[dict], str],
    verify: str | None = None,
    prepare: str | Callable[[dict], dict] | None = None,
) -> Action:
    """An action carried out by runbooks.kube or runbooks.queues, named by its functions there
    (their `run` takes no idempotency key: Kubernetes patches and Redis moves carry none)."""
    run_fn = _lazy(module, run)
    return Action(
        key,
        label,
        form,
        destructive=destructive,
        idempotent=idempotent,
        preview=_lazy(module, preview) if isinstance(preview, str) else preview,
        run=lambda p, r, key: run_fn(p, r),
        verify=_lazy(module, verify),
        prepare=_lazy(module, prepare) if isinstance(prepare, str) else prepare,
    )


def _run_check(params: dict, report: Reporter, key: str) -> str:
    from healthchecks.models import Check
    from healthchecks.probes import ProbeSpec, run_batch_sync
    from healthchecks.services import record_results

    check = Check.objects.get(pk=params["check_id"])
    report(f"probing {check.name}", progress=10)
    result = run_batch_sync([ProbeSpec.from_check(check)])[0]
    record_results([(check.pk, result)], reschedule=False)
    # The summary: run output is read by every role, and the detailed message
    # may quote what the probe fetched (docs/healthchecks.md).
    report(f"{check.name}: {result.state} — {result.summary}", progress=100)
    return result.state


def _preview_check(params: dict) -> str:
    from healthchecks.models import Check

    check = Check.objects.get(pk=params["check_id"])
    return f"probe {check.name} now (state today: {check.state}); changes nothing"


REGISTRY: dict[str, Action] = {
    action.key: action
    for action in [
        _external(
            "kube",
            "k8s_scale",
            "Kubernetes: scale deployment",
            ScaleForm,
            destructive=True,
            idempotent=True,
            preview="preview_scale",
            run="scale",
            verify="scale_applied",
        ),
        # The restartedAt value comes from the request, so re-sending the
        # patch changes nothing; still, a restart is never retried blindly.
        _external(
            "kube",
            "k8s_restart",
            "Kubernetes: rollout restart",
            DeploymentForm,
            destructive=True,
            idempotent=False,
            preview="preview_restart",
            run="restart",
            verify="restart_applied",
            prepare=lambda p: p | {"restarted_at": now_iso()},
        ),
        _external(
            "kube",
            "k8s_undo",
            "Kubernetes: rollout undo",
            UndoForm,
            destructive=True,
            idempotent=True,
            preview="preview_undo",
            run="undo",
            prepare="prepare_undo",
        ),
        _external(
            "kube",
            "k8s_pods",
            "Kubernetes: pod status",
            DeploymentForm,
            destructive=False,
            idempotent=True,
            preview=lambda p: f"list the pods of {p['namespace']}/{p['deployment']}; changes nothing",
            run="pods",
        ),
        Action(
            "http",
            "HTTP request",
            HttpForm,
            destructive=lambda p: p.get("method", "GET") != "GET",
            idempotent=lambda p: p.get("method", "GET") == "GET",
            preview=lambda p: f"{p['method']} {p['url']}" + (f" with body {p['body']}" if p.get("body") else ""),
            run=lambda p, r, key: _http(p, r, key),
        ),
        _external(
            "queues",
            "redis_llen",
            "Redis: queue length",
            QueueForm,
            destructive=False,
            idempotent=True,
            preview=lambda p: f"LLEN {p['queue']}; changes nothing",
            run="queue_length",
        ),
        _external(
            "queues",
            "redis_retry",
            "Redis: retry failed jobs",
            RetryForm,
            destructive=False,
            idempotent=False,
            preview="preview_retry",
            run="retry_failed",
        ),
        Action(
            "run_check",
            "Run a health check now",
            CheckForm,
            destructive=False,
            idempotent=True,
            preview=_preview_check,
            run=_run_check,
        ),
    ]
}

ACTION_CHOICES = [("", "— none (a person does it) —")] + [(a.key, a.label) for a in REGISTRY.values()]


def _http(params: dict, report: Reporter, key: str) -> str:
    import httpx

    check_http_target(params["url"])  # again: settings may have changed since the request
    headers = {"Idempotency-Key": key, "User-Agent": "OpsConsole-Runbooks"}
    body = params.get("body") or None
    if body:
        headers["Content-Type"] = "application/json"
    report(f"{params['method']} {params['url']}", progress=10)
    try:
        # Redirects are not followed: the allowlist names where requests go.
        response = httpx.request(
            params["method"],
            params["url"],
            content=body,
            headers=headers,
            timeout=settings.RUNBOOK_ACTION_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise ActionError(f"request failed: {type(exc).__name__}: {exc}") from exc
    text = response.text[:4000]
    report(f"HTTP {response.status_code}\n{text}", progress=100)
    if response.status_code >= 400:
        raise ActionError(f"the endpoint answered HTTP {response.status_code}")
    return f"HTTP {response.status_code}"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
