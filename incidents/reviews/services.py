"""Writes for post-incident reviews. Each service owns its transaction, its
audit entry and, for workflow transitions, an event on the incident timeline.
Rules (docs/roles.md roles matrix, `review.*` capabilities); action items are in action_items.py:
- SREs and up write and submit (`review.write`); only Managers and Admins
  approve, request changes and publish (`review.approve`); nobody approves
  or requests changes on a review they author.
- draft → in review → approved → published; "changes requested" goes back
  to draft. Text is editable in draft only; a published review is read-only
  except for a Manager's correction, which is a new version and audited.
- Concurrency: text edits are `UPDATE … WHERE version = <the version the
  editor loaded>`; a rowcount of 0 means someone else saved first, and the
  caller gets ReviewConflict instead of overwriting them. Transitions lock
  the review row (SELECT … FOR UPDATE) and re-check its status, so two
  Managers pressing "Approve" at once make one transition.
"""

from datetime import date

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from notifications import services as notifications
from opsconsole import audit
from opsconsole.roles import check_capability, has_capability

from ..models import EventKind, EventStar, Incident, IncidentSignal, TimelineEvent
from ..services import render_markdown, timeline_add_event
from .dates import add_business_days
from .models import (
    COMMENT_MAX_LENGTH,
    REQUIRED_SECTIONS,
    SECTION_FIELDS,
    SECTION_LABELS,
    SECTION_MAX_LENGTH,
    ActionItem,
    Review,
    ReviewComment,
    ReviewEvent,
    ReviewStatus,
    ReviewVersion,
)
from .permissions import is_author, may_submit

REQUIRED_SEVERITY = 2  # SEV-1 and SEV-2 get a required review when resolved


class ReviewConflict(Exception):
    """Someone saved the review (or action item) after the editor loaded it."""


class ReviewRefused(Exception):
    """A workflow step the review's current status does not allow."""


# --- helpers -------------------------------------------------------------------


def review_url(review: Review) -> str:
    return reverse("incidents:review", args=[review.incident.reference])


def _timeline(review: Review, actor, text: str, action: str) -> None:
    timeline_add_event(
        incident=review.incident,
        kind=EventKind.REVIEW,
        text=text,
        actor=actor,
        author_label="" if actor else "console",
        data={"review": review.pk, "action": action},
    )


def _sections(review: Review) -> dict:
    return {name: getattr(review, name) for name in SECTION_FIELDS}


def _save_version(review: Review, actor, number: int, reason: str) -> ReviewVersion:
    return ReviewVersion.objects.create(
        review=review,
        number=number,
        author=actor if getattr(actor, "is_authenticated", False) else None,
        status=review.status,
        reason=reason[:300],
        sections=_sections(review),
    )


def _locked(review: Review) -> Review:
    return Review.objects.select_for_update(of=("self",)).select_related("incident", "author").get(pk=review.pk)


def _phase(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _seconds(start, end) -> float | None:
    return (end - start).total_seconds() if start and end else None


def build_prefill(incident: Incident) -> dict:
    """The facts a review starts from, frozen at creation time."""
    end = incident.resolved_at or timezone.now()
    ack_or_end = incident.acknowledged_at
    mitigated = incident.mitigated_at
    signals = list(IncidentSignal.objects.filter(incident=incident).order_by("label").values_list("label", "key")[:50])
    responders = sorted({str(u) for u in incident.responders.all()})
    return {
        "reference": incident.reference,
        "title": incident.title,
        "severity": incident.severity.name,
        "severity_level": incident.severity_id,
        "declared_at": incident.declared_at.isoformat(),
        "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
        "mitigated_at": mitigated.isoformat() if mitigated else None,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "phases": {
            "to_acknowledge": _phase(_seconds(incident.declared_at, ack_or_end)),
            "to_mitigate": _phase(_seconds(ack_or_end, mitigated)),
            "to_resolve": _phase(_seconds(mitigated or ack_or_end, incident.resolved_at)),
            "total": _phase(_seconds(incident.declared_at, end)),
        },
        "impact": incident.customer_impact,
        "commander": str(incident.commander) if incident.commander else "",
        "responders": responders,
        "services": [s.name for s in incident.services.all()],
        "signals": [label or key for label, key in signals],
        "source": incident.source_kind,
        "ack_breached": incident.ack_breached,
        "resolve_breached": incident.resolve_breached,
    }


# --- creation -----------------------------------------------------------------


def review_create(*, incident: Incident, actor=None, required: bool = False) -> Review:
    """Create the incident's review, pre-filled; idempotent (returns the
    existing one, marking it required if asked). `actor` None: the console
    itself (on resolve), which needs no capability.

    Author: the incident's commander, else the actor. Due:
    REVIEW_DUE_BUSINESS_DAYS working days from today. The author is emailed.
    """
    if actor is not None:
        check_capability(actor, "review.write")
    existing = Review.objects.filter(incident=incident).first()
    if existing is not None:
        if required and not existing.required:
            Review.objects.filter(pk=existing.pk).update(required=True)
            existing.required = True
        return existing
    incident = Incident.objects.select_related("severity", "commander").get(pk=incident.pk)
    author = incident.commander or (actor if getattr(actor, "is_authenticated", False) else None)
    now = timezone.now()
    try:
        with transaction.atomic():
            review = Review.objects.create(
                incident=incident,
                author=author,
                required=required,
                due_date=add_business_days(timezone.localdate(now), settings.REVIEW_DUE_BUSINESS_DAYS),
                summary=incident.summary,
                customer_impact=incident.customer_impact,
                prefill=build_prefill(incident),
                created_at=now,
                updated_at=now,
            )
            _select_initial_events(review)
            _save_version(review, actor, 1, "created, pre-filled from the incident")
            who = f" — author {author}" if author else ""
            _timeline(
                review,
                actor,
                f"Post-incident review created{' (required)' if required else ''}, "
                f"due {review.due_date:%Y-%m-%d}{who}.",
                "create",
            )
            audit.record(
                actor,
                "review.create",
                review,
                after={"incident": incident.reference, "required": required, "due_date": review.due_date},
            )
            if author is not None and author.email:
                # A restricted incident's title stays out of the message (and of
                # Delivery.payload, which the dead-letter list shows).
                about = incident.reference if incident.restricted else f"{incident.severity.name} {incident.title}"
                notifications.notify(
                    event="review.created",
                    title=f"Write the post-incident review of {incident.reference}",
                    text=f"{about}: the review is yours, due {review.due_date:%Y-%m-%d}.",
                    url=reverse("incidents:review", args=[incident.reference]),
                    service=incident.services.first(),
                    emails=[author.email],
                    webhook=False,
                    subject=incident,
                    restricted=incident.restricted,
                )
    except IntegrityError:
        # Two resolves (or a resolve and a click) racing: the other one created it.
        return Review.objects.get(incident=incident)
    return review


def _select_initial_events(review: Review) -> None:
    """Starred events; when nothing was starred, the declaration and the
    status and SEV changes, so the timeline section is never empty."""
    starred = list(EventStar.objects.filter(event__incident=review.incident).values_list("event_id", flat=True))
    if not starred:
        starred = list(
            TimelineEvent.objects.filter(
                incident=review.incident, kind__in=[EventKind.DECLARED, EventKind.STATUS, EventKind.SEVERITY]
            ).values_list("id", flat=True)[:100]
        )
    ReviewEvent.objects.bulk_create([ReviewEvent(review=review, event_id=pk) for pk in starred])


def on_incident_resolved(incident: Incident) -> Review | None:
    """Hook called by the incident lifecycle when an incident is resolved:
    SEV-1 and SEV-2 get a required review."""
    if incident.severity_id <= REQUIRED_SEVERITY:
        return review_create(incident=incident, required=True)
    return None


def close_refusal(incident: Incident) -> str:
    """Why the incident cannot be closed yet ("" when it can)."""
    return refusal_for(incident, Review.objects.filter(incident=incident).only("status", "required").first())


def refusal_for(incident: Incident, review: Review | None) -> str:
    if review is None or not review.required or review.status == ReviewStatus.PUBLISHED:
        return ""
    return (
        f"{incident.reference} cannot be closed until its post-incident review is published "
        f"(the review is {review.get_status_display().lower()})."
    )


# --- editing --------------------------------------------------------------------


def _clean_sections(sections: dict) -> dict:
    unknown = set(sections) - set(SECTION_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown section(s): {', '.join(sorted(unknown))}.")
    cleaned = {}
    for name, text in sections.items():
        text = (text or "").replace("\r\n", "\n")
        if len(text) > SECTION_MAX_LENGTH:
            raise ValidationError(f"{SECTION_LABELS[name]} is too long (at most {SECTION_MAX_LENGTH} characters).")
        cleaned[name] = text
    return cleaned


def _conditional_text_update(review: Review, actor, version: int, sections: dict, status: str, reason: str) -> Review:
    now = timezone.now()
    with transaction.atomic():
        changed = Review.objects.filter(pk=review.pk, version=version, status=status).update(
            **sections, version=F("version") + 1, updated_at=now
        )
        if not changed:
            current = Review.objects.get(pk=review.pk)
            if current.status != status:
                raise ReviewRefused(f"The review is {current.get_status_display().lower()} now: it cannot be edited.")
            raise ReviewConflict(
                f"Someone saved this review after you opened it (version {current.version}, you edited "
                f"version {version}). Your text is kept in the form; reload to see theirs, then merge."
            )
        current = Review.objects.select_related("incident", "author").get(pk=review.pk)
        _save_version(current, actor, current.version, reason)
        before = {name: len(getattr(review, name) or "") for name in sections}
        audit.record(
            actor,
            "review.correct" if status == ReviewStatus.PUBLISHED else "review.edit",
            current,
            before={"version": version, "lengths": before},
            after={"version": current.version, "sections": sorted(sections), "reason": reason},
        )
    return current


def review_save(*, review: Review, actor, version: int, sections: dict) -> Review:
    """Save section text of a draft; keeps a version. Raises ReviewConflict
    when someone saved in between (nothing is overwritten)."""
    check_capability(actor, "review.write")
    sections = _clean_sections(sections)
    if review.status == ReviewStatus.PUBLISHED:
        raise ReviewRefused("The review is published and read-only; a Manager can correct it.")
    if review.status != ReviewStatus.DRAFT:
        raise ReviewRefused(
            f"The review is {review.get_status_display().lower()}: a Manager must request changes before it is edited."
        )
    return _conditional_text_update(review, actor, version, sections, ReviewStatus.DRAFT, "edit")


def review_correct(*, review: Review, actor, version: int, sections: dict, reason: str) -> Review:
    """A Manager's correction of a published review: a new version, audited,
    and noted on the incident timeline."""
    check_capability(actor, "review.approve")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say what the correction fixes.")
    sections = _clean_sections(sections)
    if review.status != ReviewStatus.PUBLISHED:
        raise ReviewRefused("Only a published review is corrected; edit the draft instead.")
    with transaction.atomic():
        current = _conditional_text_update(
            review, actor, version, sections, ReviewStatus.PUBLISHED, f"correction: {reason}"
        )
        _timeline(current, actor, f"Published review corrected (version {current.version}): {reason}", "correct")
    return current


# --- workflow ----------------------------------------------------------------------


def submit_problems(review: Review) -> list[str]:
    """What stops a submit: empty required sections, action items without owner or due date."""
    problems = [
        f"“{SECTION_LABELS[name]}” is empty." for name in REQUIRED_SECTIONS if not getattr(review, name).strip()
    ]
    for item in ActionItem.objects.filter(review=review).order_by("id"):
        missing = [label for label, value in (("an owner", item.owner_id), ("a due date", item.due_date)) if not value]
        if missing:
            problems.append(f"Action item “{item.title}” needs {' and '.join(missing)}.")
    return problems


def review_submit(*, review: Review, actor, version: int | None = None) -> Review:
    """draft → in review. The author (or a Manager/Admin) submits; refused with
    the list of problems while a required section is empty or an action item
    lacks an owner and a due date."""
    check_capability(actor, "review.write")
    with transaction.atomic():
        current = _locked(review)
        if not may_submit(current, actor):
            raise PermissionDenied("Only the review's author (or a Manager) submits it.")
        if current.status != ReviewStatus.DRAFT:
            raise ReviewRefused(f"The review is {current.get_status_display().lower()}: only a draft is submitted.")
        if version is not None and version != current.version:
            raise ReviewConflict("The review changed after you opened it: reload, check it, then submit.")
        problems = submit_problems(current)
        if problems:
            raise ValidationError(problems)
        return _move(current, actor, ReviewStatus.IN_REVIEW, "submit", "Post-incident review submitted for approval.")


def _move(current: Review, actor, to: str, action: str, text: str, **fields) -> Review:
    previous = current.status
    now = timezone.now()
    current.status = to
    updates = {"status": to, "updated_at": now, **fields}
    if to == ReviewStatus.IN_REVIEW:
        updates["submitted_at"] = now
    elif to == ReviewStatus.APPROVED:
        updates.update(approved_at=now, approved_by=actor)
    elif to == ReviewStatus.PUBLISHED:
        # The published text is its own version (the row lock makes +1 safe).
        updates.update(published_at=now, published_by=actor, version=current.version + 1)
    Review.objects.filter(pk=current.pk).update(**updates)
    for key, value in updates.items():
        setattr(current, key, value)
    _timeline(current, actor, text, action)
    audit.record(actor, f"review.{action}", current, before={"status": previous}, after={"status": to})
    return current


def _manager_step(review: Review, actor, *, expected: str, allow_author: bool = False) -> Review:
    check_capability(actor, "review.approve")
    current = _locked(review)
    if not allow_author and is_author(current, actor):
        raise PermissionDenied("You wrote this review: another Manager must review it.")
    if current.status != expected:
        raise ReviewRefused(
            f"The review is {current.get_status_display().lower()}, not {ReviewStatus(expected).label.lower()}."
        )
    return current


def review_request_changes(*, review: Review, actor, reason: str, section: str = "summary") -> Review:
    """in review (or approved) → draft, with the reason left as a comment."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say what needs to change.")
    if section not in SECTION_FIELDS:
        raise ValidationError("Unknown section.")
    with transaction.atomic():
        check_capability(actor, "review.approve")
        current = _locked(review)
        expected = current.status if current.status == ReviewStatus.APPROVED else ReviewStatus.IN_REVIEW
        current = _manager_step(current, actor, expected=expected)
        ReviewComment.objects.create(
            review=current, section=section, author=actor, text=reason, html=render_markdown(reason)
        )
        current = _move(
            current, actor, ReviewStatus.DRAFT, "request_changes", f"Changes requested on the review: {reason}"
        )
        if current.author is not None and current.author.email:
            notifications.notify(
                event="review.changes_requested",
                title=f"Changes requested on the review of {current.incident.reference}",
                text=reason,
                url=review_url(current),
                emails=[current.author.email],
                webhook=False,
                subject=current.incident,
                restricted=current.incident.restricted,
            )
    return current


def review_approve(*, review: Review, actor) -> Review:
    """in review → approved; a Manager or Admin who is not the author."""
    with transaction.atomic():
        current = _manager_step(review, actor, expected=ReviewStatus.IN_REVIEW)
        return _move(current, actor, ReviewStatus.APPROVED, "approve", f"Post-incident review approved by {actor}.")


def review_publish(*, review: Review, actor) -> Review:
    """approved → published (read-only from now on); the incident may close."""
    with transaction.atomic():
        current = _manager_step(review, actor, expected=ReviewStatus.APPROVED, allow_author=True)
        current = _move(current, actor, ReviewStatus.PUBLISHED, "publish", "Post-incident review published.")
        _save_version(current, actor, current.version, "published")
    return current


def review_reassign(*, review: Review, actor, author, due_date: date) -> Review:
    """A Manager gives the review to someone else or moves its due date."""
    check_capability(actor, "review.approve")
    if author is not None and not has_capability(author, "review.write"):
        raise ValidationError(f"{author} cannot write reviews (their role is read-only).")
    with transaction.atomic():
        current = _locked(review)
        if current.status == ReviewStatus.PUBLISHED:
            raise ReviewRefused("The review is published.")
        before = {"author": current.author_id, "due_date": current.due_date}
        Review.objects.filter(pk=current.pk).update(author=author, due_date=due_date, updated_at=timezone.now())
        current.author, current.due_date = author, due_date
        audit.record(
            actor, "review.reassign", current, before=before, after={"author": current.author_id, "due_date": due_date}
        )
    return current


# --- comments and timeline selection ---------------------------------------------------


def comment_add(*, review: Review, actor, section: str, text: str) -> ReviewComment:
    """A reviewer's comment on one section (Markdown, sanitised)."""
    check_capability(actor, "review.write")
    text = (text or "").strip()
    if section not in SECTION_FIELDS:
        raise ValidationError("Choose the section the comment is about.")
    if not text:
        raise ValidationError("Write the comment.")
    if len(text) > COMMENT_MAX_LENGTH:
        raise ValidationError(f"A comment is at most {COMMENT_MAX_LENGTH:,} characters.")
    if review.status == ReviewStatus.PUBLISHED:
        raise ReviewRefused("The review is published: comments are closed.")
    with transaction.atomic():
        comment = ReviewComment.objects.create(
            review=review, section=section, author=actor, text=text, html=render_markdown(text)
        )
        audit.record(actor, "review.comment", review, after={"comment": comment.pk, "section": section})
    return comment


def review_select_event(*, review: Review, actor, event_id: int, selected: bool) -> bool:
    """Add or remove a timeline event from the review's timeline (draft only).
    Idempotent. The event keeps its own time: the review never retimes it."""
    check_capability(actor, "review.write")
    if review.status != ReviewStatus.DRAFT:
        raise ReviewRefused("The timeline is chosen while the review is a draft.")
    if not TimelineEvent.objects.filter(pk=event_id, incident_id=review.incident_id).exists():
        raise ValidationError("That event is not on this incident's timeline.")
    with transaction.atomic():
        if selected:
            _, changed = ReviewEvent.objects.get_or_create(review=review, event_id=event_id)
        else:
            changed = ReviewEvent.objects.filter(review=review, event_id=event_id).delete()[0] > 0
        if changed:
            audit.record(
                actor, "review.event_add" if selected else "review.event_remove", review, after={"event": event_id}
            )
    return selected
