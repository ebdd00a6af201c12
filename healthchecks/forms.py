"""Check and maintenance-window forms. The check form shows the settings of
every kind; clean() keeps those of the chosen kind, validates them and
builds `config`, so a bad value is a clear field error, never a 500."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from opsconsole.badinput import DateTimeField
from opsconsole.models import Service

from .models import Check, MaintenanceWindow
from .probes import datastores, files, policy
from .probes.base import ProbeError

# Which settings each kind uses (shown/hidden by static/healthchecks/check_form.js).
KIND_FIELDS: dict[str, list[str]] = {
    "http": [
        "url",
        "method",
        "headers",
        "expected_status",
        "body_contains",
        "json_path",
        "json_equals",
        "follow_redirects",
        "verify_tls",
        "ca_file",
        "ca_pem",
    ],
    "tcp": ["host", "port"],
    "dns": ["dns_name", "record_type", "nameserver", "port", "expected_addresses"],
    "tls": ["host", "port", "server_name", "verify_tls", "ca_file", "ca_pem"],
    "postgres": ["dsn", "query", "below"],
    "redis": ["url", "redis_mode", "redis_key"],
    "prometheus": ["url", "query", "below", "empty_is_critical"],
    "kubernetes": ["kubeconfig", "kubeconfig_content", "forget_kubeconfig", "kube_context", "namespace", "deployment"],
    "heartbeat": ["period_seconds", "grace_seconds"],
}
REQUIRED: dict[str, list[str]] = {
    "http": ["url"],
    "tcp": ["host", "port"],
    "dns": ["dns_name"],
    "tls": ["host"],
    "postgres": ["dsn", "query"],
    "redis": ["url"],
    "prometheus": ["url", "query"],
    "kubernetes": ["namespace", "deployment"],
    "heartbeat": ["period_seconds"],
}
# Form field → key in Check.config.
CONFIG_KEYS = {
    "dns_name": "name",
    "expected_addresses": "expected",
    "redis_mode": "mode",
    "redis_key": "key",
    "kube_context": "context",
}
# Never sent back to the browser: a stored pasted kubeconfig holds credentials.
SECRET_FIELDS = {"kubeconfig_content", "forget_kubeconfig"}
# Checkboxes that are on unless unticked: their False is stored, since the probe
# reads a missing key as on (blackbox_exporter's defaults).
DEFAULT_ON = {"verify_tls", "follow_redirects"}
THRESHOLD_HELP = (
    "HTTP/TCP/Redis ping: latency in ms. TLS: days left (warning above critical). PostgreSQL, "
    "Prometheus: the value. Redis memory: % used; list: length. Kubernetes: restarts."
)


class CheckForm(forms.ModelForm):
    url = forms.CharField(
        required=False,
        max_length=500,
        label="URL",
        help_text="HTTP(S) target, Prometheus base URL, or redis:// URL.",
    )
    method = forms.ChoiceField(
        required=False,
        choices=[(m, m) for m in ("GET", "HEAD", "POST", "PUT", "OPTIONS")],
        initial="GET",
    )
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One “Name: value” per line.",
    )
    expected_status = forms.CharField(required=False, help_text="Comma-separated codes; empty: any 2xx/3xx.")
    body_contains = forms.CharField(required=False, max_length=200)
    json_path = forms.CharField(required=False, max_length=200, help_text="e.g. status or checks.database.status")
    json_equals = forms.CharField(required=False, max_length=200, help_text="e.g. healthy")
    verify_tls = forms.BooleanField(required=False, initial=True, label="Verify the certificate")
    follow_redirects = forms.BooleanField(
        required=False,
        initial=True,
        label="Follow redirects",
        help_text="Up to 10 hops, as blackbox_exporter does; off: a 3xx is the answer.",
    )
    ca_file = forms.CharField(
        required=False,
        max_length=300,
        label="CA bundle path",
        help_text="A file in the probe files directory (HEALTHCHECK_FILES_DIR), or paste the certificates below.",
    )
    ca_pem = forms.CharField(
        required=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="CA certificates (PEM)",
        help_text="Pasted -----BEGIN CERTIFICATE----- blocks, instead of a path.",
    )
    host = forms.CharField(required=False, max_length=253)
    port = forms.IntegerField(required=False, min_value=1, max_value=65535)
    server_name = forms.CharField(required=False, max_length=253, help_text="Name the certificate must match.")
    dns_name = forms.CharField(required=False, max_length=253, label="Name to resolve")
    record_type = forms.ChoiceField(required=False, choices=[(t, t) for t in ("A", "AAAA", "CNAME", "MX", "TXT")])
    nameserver = forms.GenericIPAddressField(required=False, help_text="Empty: the system resolver.")
    expected_addresses = forms.CharField(required=False, help_text="Comma-separated.")
    dsn = forms.CharField(
        required=False,
        max_length=500,
        label="PostgreSQL DSN",
        help_text="postgresql://user:password@host:5432/db",
    )
    query = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="SQL (read-only, first column of first row) or PromQL.",
    )
    below = forms.BooleanField(required=False, label="Alert when the value is below the thresholds")
    empty_is_critical = forms.BooleanField(required=False, label="No series is critical (else unknown)")
    redis_mode = forms.ChoiceField(
        required=False,
        label="Redis measure",
        choices=[("ping", "Ping"), ("memory", "Memory used %"), ("list", "List length")],
    )
    redis_key = forms.CharField(required=False, max_length=200, label="List key", help_text="e.g. queues:default")
    kubeconfig = forms.CharField(
        required=False,
        max_length=300,
        label="Kubeconfig path",
        help_text="A file in the probe files directory (HEALTHCHECK_FILES_DIR); "
        "empty and nothing pasted: in-cluster service account.",
    )
    kubeconfig_content = forms.CharField(
        required=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Kubeconfig (pasted)",
        help_text="Stored as a secret and never shown again; leave empty to keep the stored one. "
        "Inline *-data fields and tokens only (no file paths, exec or auth plugins).",
    )
    forget_kubeconfig = forms.BooleanField(required=False, label="Remove the stored pasted kubeconfig")
    kube_context = forms.CharField(required=False, max_length=200, label="Kubeconfig context")
    namespace = forms.CharField(required=False, max_length=63)
    deployment = forms.CharField(required=False, max_length=253)
    period_seconds = forms.IntegerField(required=False, min_value=60, help_text="How often the job pings.")
    grace_seconds = forms.IntegerField(required=False, min_value=0, initial=600)

    class Meta:
        model = Check
        fields = [
            "name",
            "service",
            "kind",
            "interval_seconds",
            "timeout_seconds",
            "enabled",
            "warning_threshold",
            "critical_threshold",
            "consecutive_needed",
            "queue",
            "opens_incident",
        ]
        help_texts = {
            "warning_threshold": THRESHOLD_HELP,
            "consecutive_needed": "Consecutive agreeing results before the state changes.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = Service.objects.order_by("name")
        config = self.instance.config or {}
        for field in {f for names in KIND_FIELDS.values() for f in names} - SECRET_FIELDS:
            value = config.get(CONFIG_KEYS.get(field, field))
            if value is None:
                continue
            if field == "headers":
                value = "\n".join(f"{k}: {v}" for k, v in value.items())
            elif field in ("expected_status", "expected_addresses"):
                value = ", ".join(map(str, value))
            self.initial[field] = value

    def config_fields(self) -> list[tuple[forms.BoundField, str]]:
        kinds: dict[str, list[str]] = {}
        for kind, names in KIND_FIELDS.items():
            for name in names:
                kinds.setdefault(name, []).append(kind)
        return [(self[name], " ".join(kind_list)) for name, kind_list in kinds.items()]

    def clean(self) -> dict:
        data = super().clean()
        kind = data.get("kind")
        if kind not in KIND_FIELDS:
            return data
        for name in REQUIRED[kind]:
            if data.get(name) in (None, ""):
                self.add_error(name, f"Required for a {Check.Kind(kind).label} check.")
        config = {}
        for name in KIND_FIELDS[kind]:
            value = data.get(name)
            if (
                name == "forget_kubeconfig"
                or value in (None, "")
                or (isinstance(value, bool) and not value and name not in DEFAULT_ON)
            ):
                continue
            try:
                config[CONFIG_KEYS.get(name, name)] = self._convert(kind, name, value)
            except ValidationError as error:
                self.add_error(name, error)
        if kind == "redis" and config.get("mode") == "list" and not config.get("key"):
            self.add_error("redis_key", "Required to measure a list's length.")
        self._keep_or_check_secrets(kind, data, config)
        self._check_thresholds(kind, data)
        interval, timeout = data.get("interval_seconds"), data.get("timeout_seconds")
        if interval and timeout and timeout >= interval:
            self.add_error("timeout_seconds", "The timeout must be shorter than the interval.")
        if interval is not None and interval < 5:
            self.add_error("interval_seconds", "At least 5 seconds.")
        if timeout is not None and timeout <= 0:
            self.add_error("timeout_seconds", "Must be more than 0.")
        data["config"] = config
        return data

    def _keep_or_check_secrets(self, kind: str, data: dict, config: dict) -> None:
        """Pasted content or a path, not both; a stored pasted kubeconfig is
        kept when the field is left empty (it is never shown again)."""
        if kind == "kubernetes":
            stored = (self.instance.config or {}).get("kubeconfig_content") if self.instance.pk else None
            if config.get("kubeconfig") and config.get("kubeconfig_content"):
                self.add_error("kubeconfig_content", "Give a path or pasted content, not both.")
            elif stored and not config.get("kubeconfig") and not data.get("forget_kubeconfig"):
                config.setdefault("kubeconfig_content", stored)
        if config.get("ca_file") and config.get("ca_pem"):
            self.add_error("ca_pem", "Give a path or pasted certificates, not both.")

    @staticmethod
    def _policy(check, value: str) -> None:
        """Form-time refusals with the probe's own words (the probe checks again)."""
        try:
            check(value)
        except ProbeError as exc:
            raise ValidationError(str(exc)) from exc

    def _convert(self, kind: str, name: str, value):
        if name == "url":
            schemes = ("redis", "rediss", "unix") if kind == "redis" else ("http", "https")
            try:
                parts = urlsplit(value)
                hostname = parts.hostname
                parts.port  # noqa: B018  (raises ValueError for a port out of range: "http://h:99999")
            except ValueError as exc:  # http://[::1 and the like
                raise ValidationError("Enter a valid URL.") from exc
            if parts.scheme not in schemes or not (hostname or parts.scheme == "unix"):
                raise ValidationError(f"Enter a URL starting with {' or '.join(s + '://' for s in schemes)}.")
            if kind == "redis":
                self._policy(datastores.redis_options, value)
            if hostname and policy.literal_address(hostname):
                self._policy(policy.check_address, hostname)
            return value
        if name in ("host", "nameserver") and policy.literal_address(value):
            self._policy(policy.check_address, value.strip("[]"))
            return value
        if name == "ca_file":
            self._policy(lambda path: files.allowed_file(path, what="CA bundle"), value)
            return value
        if name == "kubeconfig":
            self._policy(lambda path: files.allowed_file(path, what="kubeconfig"), value)
            return value
        if name == "kubeconfig_content":
            self._policy(files.load_kubeconfig_content, value)
            return value
        if name == "ca_pem":
            self._policy(files.check_ca_pem, value)
            return value
        if name == "headers":
            headers = {}
            for line in value.splitlines():
                if not line.strip():
                    continue
                key, sep, val = line.partition(":")
                if not sep or not key.strip():
                    raise ValidationError(f"“{line[:40]}” is not a “Name: value” line.")
                headers[key.strip()] = val.strip()
            return headers
        if name == "expected_status":
            try:
                codes = [int(code) for code in value.replace(" ", "").split(",") if code]
            except ValueError as exc:
                raise ValidationError("Enter status codes such as 200, 204.") from exc
            if any(not 100 <= code <= 599 for code in codes):
                raise ValidationError("Status codes are between 100 and 599.")
            return codes
        if name == "expected_addresses":
            return [address.strip() for address in value.split(",") if address.strip()]
        if name == "dsn" and not value.startswith(("postgresql://", "postgres://", "host=", "dbname=")):
            raise ValidationError("Enter a postgresql:// URL or a key=value DSN.")
        if name == "dsn":
            self._policy(datastores.check_dsn, value)
        if name == "query" and kind == "postgres" and not value.lstrip().lower().startswith(("select", "with")):
            raise ValidationError("Only a SELECT (or WITH … SELECT) query: checks run read-only.")
        return value

    def _check_thresholds(self, kind: str, data: dict) -> None:
        warning, critical = data.get("warning_threshold"), data.get("critical_threshold")
        if warning is None or critical is None:
            return
        below = kind == "tls" or data.get("below")
        if below and warning < critical:
            self.add_error(
                "warning_threshold",
                "Alerting below a value: the warning threshold must be above the critical one.",
            )
        if not below and warning > critical:
            self.add_error("warning_threshold", "The warning threshold must not be above the critical one.")


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["service", "check_ref", "starts_at", "ends_at", "reason"]
        labels = {"check_ref": "Check"}
        field_classes = {"starts_at": DateTimeField, "ends_at": DateTimeField}
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["check_ref"].queryset = Check.objects.select_related("service").order_by("service__name", "name")
        self.fields["service"].queryset = Service.objects.order_by("name")

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("service") and not data.get("check_ref"):
            # On the field, so the model constraint saying the same is not checked twice.
            self.add_error("service", "Choose a service or a check.")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The window must end after it starts.")
        return data
