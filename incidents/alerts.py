"""Prometheus Alertmanager webhook (payload version 4) → incidents.

Alerts are grouped by Alertmanager's `groupKey`: one group, one incident
(open_or_update_from_source with dedup key "alertmanager:<sha256(groupKey)>").
A retried delivery is never counted twice: every alert notification is
identified by (groupKey, fingerprint, status, startsAt, endsAt) and stored in
AlertReceipt under a unique key; a notification seen before is skipped.
"""

import hashlib
from dataclasses import dataclass, field
from html import escape as _escape

from django.db import connection, transaction
from django.utils import timezone

from opsconsole import audit

from . import services
from .models import AlertReceipt, Incident

RECEIPT_CHUNK = 2000
LISTED_ALERTS = 50


class PayloadError(ValueError):
    """The body is not an Alertmanager v4 webhook payload; the message says why."""


@dataclass
class Alert:
    status: str
    labels: dict
    annotations: dict
    starts_at: str
    ends_at: str
    fingerprint: str

    @property
    def name(self) -> str:
        return str(self.labels.get("alertname", "alert"))

    @property
    def summary(self) -> str:
        return str(self.annotations.get("summary") or self.annotations.get("description") or "")


@dataclass
class Notification:
    group_key: str
    status: str
    alerts: list[Alert]
    group_labels: dict = field(default_factory=dict)
    common_labels: dict = field(default_factory=dict)
    common_annotations: dict = field(default_factory=dict)
    external_url: str = ""
    receiver: str = ""


def _dict(value, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"`{name}` must be an object")
    return {str(k): str(v) for k, v in value.items()}


def parse(data) -> Notification:
    """Validate a webhook body; raise PayloadError naming the first problem."""
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object (Alertmanager webhook payload)")
    if str(data.get("version")) != "4":
        raise PayloadError(f'unsupported payload version {data.get("version")!r}: expected "4"')
    group_key = data.get("groupKey")
    if not isinstance(group_key, str) or not group_key:
        raise PayloadError("`groupKey` is missing or empty")
    if data.get("status") not in ("firing", "resolved"):
        raise PayloadError('`status` must be "firing" or "resolved"')
    raw_alerts = data.get("alerts")
    if not isinstance(raw_alerts, list) or not raw_alerts:
        raise PayloadError("`alerts` must be a non-empty list")
    alerts = []
    for i, raw in enumerate(raw_alerts):
        if not isinstance(raw, dict):
            raise PayloadError(f"alerts[{i}] must be an object")
        if raw.get("status") not in ("firing", "resolved"):
            raise PayloadError(f'alerts[{i}].status must be "firing" or "resolved"')
        labels = _dict(raw.get("labels"), f"alerts[{i}].labels")
        if not labels:
            raise PayloadError(f"alerts[{i}].labels is missing or empty")
        starts_at = raw.get("startsAt")
        if not isinstance(starts_at, str) or not starts_at:
            raise PayloadError(f"alerts[{i}].startsAt is missing")
        fingerprint = raw.get("fingerprint") or hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
        alerts.append(
            Alert(
                status=raw["status"],
                labels=labels,
                annotations=_dict(raw.get("annotations"), f"alerts[{i}].annotations"),
                starts_at=starts_at,
                ends_at=str(raw.get("endsAt") or ""),
                fingerprint=str(fingerprint)[:100],
            )
        )
    return Notification(
        group_key=group_key,
        status=data["status"],
        alerts=alerts,
        group_labels=_dict(data.get("groupLabels"), "groupLabels"),
        common_labels=_dict(data.get("commonLabels"), "commonLabels"),
        common_annotations=_dict(data.get("commonAnnotations"), "commonAnnotations"),
        external_url=str(data.get("externalURL") or ""),
        receiver=str(data.get("receiver") or ""),
    )


def dedup_key(group_key: str) -> str:
    return "alertmanager:" + hashlib.sha256(group_key.encode()).hexdigest()


def _receipt_key(group_key: str, alert: Alert) -> str:
    # endsAt only identifies resolved notifications: for a firing alert it is
    # a moving "valid until" that Alertmanager refreshes on every re-send.
    ends_at = alert.ends_at if alert.status == "resolved" else ""
    raw = "\x1f".join([group_key, alert.fingerprint, alert.status, alert.starts_at, ends_at])
    return hashlib.sha256(raw.encode()).hexdigest()


def _title(note: Notification) -> str:
    return (
        note.common_annotations.get("summary")
        or note.common_labels.get("alertname")
        or note.group_labels.get("alertname")
        or note.alerts[0].name
    )[:200]


def escape(text: str) -> str:
    # Quotes as written: they are safe in element content, and Markdown keeps them.
    return _escape(text, quote=False)


def _alert_list(heading: str, alerts: list[Alert]) -> tuple[str, str]:
    """A heading line and one line per alert (at most LISTED_ALERTS: a
    timeline entry of thousands of lines is unreadable, and rendering it took
    seconds), as Markdown and as its HTML, composed together: parsing the
    generated Markdown back cost 3 ms of a 20-alert delivery's 25. Label
    values are escaped, so an alert's text shows as written, never as markup."""
    listed = alerts[:LISTED_ALERTS]
    more = len(alerts) - LISTED_ALERTS
    markdown = [f"{heading}\n"]
    html = [f"<p>{escape(heading)}</p>\n<ul>"]
    for a in listed:
        severity = f" ({a.labels['severity']})" if "severity" in a.labels else ""
        summary = f" — {a.summary}" if a.summary else ""
        instance = f" [{a.labels['instance']}]" if "instance" in a.labels else ""
        markdown.append(f"- `{a.name}`{severity}{summary}{instance}")
        html.append(f"<li><code>{escape(a.name)}</code>{escape(severity + summary + instance)}</li>")
    if more > 0:
        markdown.append(f"- … and {more} more")
        html.append(f"<li>… and {more} more</li>")
    html.append("</ul>")
    return "\n".join(markdown), "\n".join(html)


def _claim_receipts(note: Notification, keys: list[str]) -> set[str]:
    """Insert one receipt per alert notification (`keys[i]` is alert i's);
    return the keys that were new.

    One INSERT … ON CONFLICT DO NOTHING RETURNING: a notification already
    stored (a retried delivery, or a concurrent one that committed first, or
    is committing: the unique index makes us wait for it) returns nothing.
    """
    now = timezone.now()
    rows = {}
    for key, alert in zip(keys, note.alerts, strict=True):
        rows[key] = (note.group_key[:300], alert.fingerprint, alert.status)
    table = AlertReceipt._meta.db_table
    items = list(rows.items())
    claimed: set[str] = set()
    # In chunks: one statement for a whole large delivery would pass PostgreSQL's
    # limit of 65,535 parameters (about 13,000 alerts).
    with connection.cursor() as cursor:
        for start in range(0, len(items), RECEIPT_CHUNK):
            chunk = items[start : start + RECEIPT_CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
            params = [v for key, (group, fp, status) in chunk for v in (key, group, fp, status, now)]
            cursor.execute(
                f"INSERT INTO {table} (key, group_key, fingerprint, status, received_at) "
                f"VALUES {values} "
                "ON CONFLICT (key) DO NOTHING RETURNING key",  # nosec B608  # table from model _meta, values are %s
                params,
            )
            claimed.update(row[0] for row in cursor.fetchall())
    return claimed


def _reserve_reference(key: str, note: Notification, keys: list[str]) -> str:
    """The id of the incident this delivery will open, taken before its
    transaction; "" when it will not open one (nothing firing, the group's
    incident is open, or every firing alert was seen before).

    Taken inside, the per-day counter row stays locked until the delivery
    commits: in an alert storm every new group's delivery would wait for the
    previous one's (measured: 8 against 18 new incidents/s with 4 concurrent
    writers). A reserved id that goes unused (a concurrent delivery of the
    same group opened it first, or this one was a retry) leaves a gap in
    the day's numbers; ids stay unique."""
    firing = [k for k, alert in zip(keys, note.alerts, strict=True) if alert.status == "firing"]
    if not firing or Incident.objects.open().filter(dedup_key=key).exists():
        return ""
    # Alertmanager re-sends what still fires (repeat_interval), also after
    # people resolved the incident: nothing new, no id.
    # (The first chunk tells: a wrong "" only means the declare takes its id itself.)
    sample = set(firing[:RECEIPT_CHUNK])
    if AlertReceipt.objects.filter(key__in=sample).count() == len(sample):
        return ""
    return services.next_reference()


def ingest(note: Notification, *, actor=None) -> dict:
    """Apply one delivery. Idempotent: a repeated delivery changes nothing and
    returns duplicates == number of alerts. All or nothing (one transaction)."""
    key = dedup_key(note.group_key)
    # One batch of audit rows per delivery (declared, event, delivery): written
    # together at the end, the audit head held only from there to commit.
    keys = [_receipt_key(note.group_key, alert) for alert in note.alerts]
    reference = _reserve_reference(key, note, keys)
    with transaction.atomic(), audit.batch():
        fresh_keys = _claim_receipts(note, keys)
        fresh = [a for key, a in zip(keys, note.alerts, strict=True) if key in fresh_keys]
        incident: Incident | None = None
        firing = [a for a in fresh if a.status == "firing"]
        resolved = [a for a in fresh if a.status == "resolved"]
        service_names = sorted(
            {a.labels["service"] for a in note.alerts if a.labels.get("service")}
            | ({note.common_labels["service"]} if note.common_labels.get("service") else set())
        )
        common = {
            "group_key": note.group_key,
            "receiver": note.receiver,
            "external_url": note.external_url,
            "group_labels": note.group_labels,
        }
        if firing:
            # One query for every distinct label value: a delivery may carry thousands.
            severity = services.alert_severity_highest({a.labels.get("severity") for a in firing})
            text, html = _alert_list(f"{len(firing)} alert(s) firing:", firing)
            incident = services.open_or_update_from_source(
                dedup_key=key,
                title=_title(note),
                severity=severity,
                services=service_names,
                reference=reference,
                text=text,
                text_html=html,
                data={
                    **common,
                    "alerts": [a.fingerprint for a in firing],
                    "signals": [{"key": a.fingerprint, "label": a.name, "firing": True} for a in firing],
                },
            )
        if resolved:
            text, html = _alert_list(f"{len(resolved)} alert(s) resolved:", resolved)
            incident = (
                services.open_or_update_from_source(
                    dedup_key=key,
                    title=_title(note),
                    severity=services.alert_severity(None),
                    services=service_names,
                    text=text,
                    text_html=html,
                    resolved=True,
                    data={
                        **common,
                        "alerts": [a.fingerprint for a in resolved],
                        "signals": [{"key": a.fingerprint, "label": a.name, "firing": False} for a in resolved],
                    },
                )
                or incident
            )
        if fresh_keys and incident is not None:
            keys = sorted(fresh_keys)
            for start in range(0, len(keys), RECEIPT_CHUNK):
                AlertReceipt.objects.filter(key__in=keys[start : start + RECEIPT_CHUNK]).update(incident=incident)
        if fresh:
            audit.record(
                actor,
                "incident.alertmanager_delivery",
                incident,
                after={
                    "group_key": note.group_key,
                    "new": len(fresh),
                    "duplicates": len(note.alerts) - len(fresh),
                },
            )
    return {
        "incident": incident.reference if incident else None,
        "new_alerts": len(fresh),
        "duplicates": len(note.alerts) - len(fresh),
    }
