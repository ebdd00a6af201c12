"""A realistic incident history with reviews and action items, for the demo
(`seed_demo`: 2 years, a few hundred incidents) and for the manager-page
benchmark and query-count test (thousands).

Bulk inserts, not services: a past that never happened through the console
has no audit entries or notifications to write, and seeding must stay fast.
Idempotent: the history is generated once (its incidents have
source_kind="history"). Deterministic for a given seed.
"""

import random
from datetime import timedelta

from django.utils import timezone

from opsconsole.models import Service, User

from ..models import EventKind, Incident, SeverityLevel, TimelineEvent
from ..services import ensure_defaults
from .models import (
    ActionItem,
    ActionStatus,
    Recurrence,
    Review,
    ReviewEvent,
    ReviewStatus,
    ReviewVersion,
)

HISTORY_SOURCE = "history"

SCENARIOS = [
    ("Database connection exhaustion on order_db", "postgresql", "Connection pool limits and idle timeouts"),
    ("High queue backlog on the default queue", "message-queue", "Consumer autoscaling lagged behind load"),
    ("TLS certificate expired on the API ingress", "checkout-api", "cert-manager renewal failed silently"),
    ("Redis memory above 90%", "redis", "Keys without TTL from a new feature"),
    ("Checkout API 5xx above 5%", "checkout-api", "A bad deploy; rollback took too long"),
    ("Order worker crash loop", "order-worker", "A poison message without a dead-letter route"),
    ("Slow responses on the API", "checkout-api", "An N+1 query in the order listing"),
    ("Replica lag above 5 minutes", "postgresql", "A long-running analytics query on the replica"),
]
ACTIONS = [
    "Alert on certificate expiry 14 days ahead",
    "Add a dead-letter queue for orders.created",
    "Lower the pool's idle timeout to 300 s",
    "Update the runbook with the recovery commands",
    "Add a TTL to cache keys written by the feature flag service",
    "Automate rollback when the 5xx rate passes 5%",
    "Load-test the consumer autoscaling",
    "Move analytics queries off the replica",
]
SEV_WEIGHTS = [(1, 0.06), (2, 0.22), (3, 0.44), (4, 0.28)]


def _pick_severity(rng: random.Random) -> int:
    roll, total = rng.random(), 0.0
    for level, weight in SEV_WEIGHTS:
        total += weight
        if roll <= total:
            return level
    return 4


def generate_history(*, incidents: int, days: int = 730, seed: int = 7, stdout=None) -> int:
    """Create `incidents` past incidents over `days` days, with timelines,
    reviews (every SEV-1/2, some SEV-3), action items and recurrences.
    Returns the number created (0 when the history already exists)."""
    if Incident.objects.filter(source_kind=HISTORY_SOURCE).exists():
        return 0
    ensure_defaults()
    rng = random.Random(seed)
    levels = {level.level: level for level in SeverityLevel.objects.all()}
    people = list(User.objects.filter(username__in=["sre", "commander", "manager", "admin"]).order_by("username"))
    if not people:
        people = list(User.objects.filter(is_active=True).order_by("id")[:5])
    services = {s.slug: s for s in Service.objects.all()}
    for _title, slug, _cause in SCENARIOS:
        if slug not in services:
            services[slug] = Service.objects.create(slug=slug, name=slug.replace("-", " ").title())
    now = timezone.now()
    today = timezone.localdate()
    day_numbers: dict = {}
    rows, plan = [], []
    for i in range(incidents):
        declared = now - timedelta(days=days) + timedelta(seconds=rng.uniform(0, (days - 1) * 86400))
        sev = _pick_severity(rng)
        level = levels[sev]
        title, slug, cause = SCENARIOS[rng.randrange(len(SCENARIOS))]
        ack = declared + timedelta(minutes=max(1.0, rng.lognormvariate(2.3 if sev <= 2 else 3.3, 0.8)))
        mitigated = ack + timedelta(minutes=rng.uniform(5, 90))
        resolved = mitigated + timedelta(minutes=rng.uniform(5, 240 if sev <= 2 else 900))
        day = declared.date()
        # Numbers from 901 up: the console's own numbering of a past day never reaches them.
        day_numbers[day] = day_numbers.get(day, 900) + 1
        recent = (now - resolved).days < 10
        incident = Incident(
            reference=f"INC-{day:%Y-%m-%d}-{day_numbers[day]:03d}",
            title=title,
            summary=f"{title}. Cause: {cause.lower()}.",
            severity=level,
            status="resolved" if recent else "closed",
            commander=people[i % len(people)] if people else None,
            customer_impact="Some customers saw errors or delays." if sev <= 2 else "",
            source_kind=HISTORY_SOURCE,
            dedup_key=f"alertmanager:demo-{slug}-{rng.randrange(6)}" if rng.random() < 0.6 else "",
            declared_at=declared,
            acknowledged_at=ack,
            mitigated_at=mitigated,
            resolved_at=resolved,
            closed_at=None if recent else resolved + timedelta(days=rng.randint(1, 8)),
            last_activity_at=resolved,
        )
        incident.ack_due_at, incident.resolve_due_at = incident.compute_due(level)
        rows.append(incident)
        plan.append((slug, cause, sev, recent))
    created = Incident.objects.bulk_create(rows, batch_size=1000)
    through = Incident.services.through
    through.objects.bulk_create(
        [
            through(incident_id=inc.pk, service_id=services[slug].pk)
            for inc, (slug, _c, _s, _r) in zip(created, plan, strict=True)
        ],
        batch_size=2000,
    )
    events = []
    for inc in created:
        events += [
            TimelineEvent(
                incident=inc,
                kind=EventKind.DECLARED,
                author_label="alert",
                text=f"Declared {inc.severity.name}: **{inc.title}**",
                html=f"<p>Declared {inc.severity.name}: <strong>{inc.title}</strong></p>",
                occurred_at=inc.declared_at,
                recorded_at=inc.declared_at,
            ),
            TimelineEvent(
                incident=inc,
                kind=EventKind.STATUS,
                author=inc.commander,
                text="Status: Triggered → **Acknowledged**",
                html="<p>Status: Triggered → <strong>Acknowledged</strong></p>",
                occurred_at=inc.acknowledged_at,
                recorded_at=inc.acknowledged_at,
            ),
            TimelineEvent(
                incident=inc,
                kind=EventKind.STATUS,
                author=inc.commander,
                text="Status: Acknowledged → **Mitigated**",
                html="<p>Status: Acknowledged → <strong>Mitigated</strong></p>",
                occurred_at=inc.mitigated_at,
                recorded_at=inc.mitigated_at,
            ),
            TimelineEvent(
                incident=inc,
                kind=EventKind.STATUS,
                author=inc.commander,
                text="Status: Mitigated → **Resolved**",
                html="<p>Status: Mitigated → <strong>Resolved</strong></p>",
                occurred_at=inc.resolved_at,
                recorded_at=inc.resolved_at,
            ),
        ]
    events = TimelineEvent.objects.bulk_create(events, batch_size=2000)
    events_by_incident: dict = {}
    for event in events:
        events_by_incident.setdefault(event.incident_id, []).append(event.pk)

    reviews, review_plan = [], []
    for inc, (_slug, cause, sev, recent) in zip(created, plan, strict=True):
        if sev > 2 and not (sev == 3 and rng.random() < 0.15):
            continue
        due = inc.resolved_at.date() + timedelta(days=7)
        if recent:
            status = rng.choice([ReviewStatus.DRAFT, ReviewStatus.DRAFT, ReviewStatus.IN_REVIEW, ReviewStatus.APPROVED])
        else:
            status = ReviewStatus.PUBLISHED if rng.random() < 0.95 else ReviewStatus.IN_REVIEW
        manager = next((p for p in people if p.username == "manager"), None)
        reviews.append(
            Review(
                incident=inc,
                author=inc.commander,
                status=status,
                required=sev <= 2,
                due_date=due,
                summary=inc.summary,
                customer_impact=inc.customer_impact or "No customer impact.",
                root_cause=cause + ".",
                contributing_factors="Alert thresholds were set before the last traffic growth.",
                went_well="Alerting fired within a minute; the runbook was followed.",
                went_badly="Escalation to the database owner took too long.",
                got_lucky="It happened outside peak hours.",
                lessons_learned="Review alert thresholds every quarter.",
                prefill={"reference": inc.reference, "severity": inc.severity.name, "demo": True},
                created_at=inc.resolved_at,
                updated_at=inc.resolved_at,
                submitted_at=inc.resolved_at + timedelta(days=2) if status != ReviewStatus.DRAFT else None,
                approved_at=inc.resolved_at + timedelta(days=4)
                if status in (ReviewStatus.APPROVED, ReviewStatus.PUBLISHED)
                else None,
                approved_by=manager if status in (ReviewStatus.APPROVED, ReviewStatus.PUBLISHED) else None,
                published_at=inc.resolved_at + timedelta(days=5) if status == ReviewStatus.PUBLISHED else None,
                published_by=manager if status == ReviewStatus.PUBLISHED else None,
            )
        )
        review_plan.append(recent)
    reviews = Review.objects.bulk_create(reviews, batch_size=1000)
    ReviewVersion.objects.bulk_create(
        [
            ReviewVersion(
                review=r,
                number=1,
                author=r.author,
                status=r.status,
                reason="imported history",
                created_at=r.created_at,
                sections={"summary": r.summary},
            )
            for r in reviews
        ],
        batch_size=2000,
    )
    ReviewEvent.objects.bulk_create(
        [ReviewEvent(review=r, event_id=pk) for r in reviews for pk in events_by_incident.get(r.incident_id, [])],
        batch_size=5000,
    )
    items = []
    for review, recent in zip(reviews, review_plan, strict=True):
        for _ in range(rng.randint(1, 3)):
            due = review.created_at.date() + timedelta(days=rng.randint(7, 45))
            if recent or rng.random() < 0.12:
                status = rng.choice([ActionStatus.OPEN, ActionStatus.IN_PROGRESS])
            else:
                status = ActionStatus.DONE if rng.random() < 0.9 else ActionStatus.WONT_DO
            items.append(
                ActionItem(
                    review=review,
                    title=ACTIONS[rng.randrange(len(ACTIONS))],
                    owner=people[rng.randrange(len(people))] if people else None,
                    due_date=due,
                    priority=rng.randint(1, 4),
                    status=status,
                    wont_do_reason="Superseded by the platform migration." if status == ActionStatus.WONT_DO else "",
                    created_at=review.created_at,
                    updated_at=review.created_at,
                    closed_at=min(now, review.created_at + timedelta(days=rng.randint(3, 40)))
                    if status in (ActionStatus.DONE, ActionStatus.WONT_DO)
                    else None,
                )
            )
    ActionItem.objects.bulk_create(items, batch_size=2000)
    _link_recurrences(created, {r.incident_id: r for r in reviews}, today)
    if stdout is not None:
        stdout.write(f"  history: {len(created)} incidents, {len(reviews)} reviews, {len(items)} action items")
    return len(created)


def _link_recurrences(created: list[Incident], reviews: dict, today) -> None:
    """Each incident with a dedup key recurs the previous one with that key."""
    last: dict = {}
    closed = set(
        ActionItem.objects.filter(review__in=list(reviews.values()))
        .exclude(status__in=[ActionStatus.OPEN, ActionStatus.IN_PROGRESS])
        .values_list("review_id", flat=True)
    )
    still_open = set(
        ActionItem.objects.filter(
            review__in=list(reviews.values()), status__in=[ActionStatus.OPEN, ActionStatus.IN_PROGRESS]
        ).values_list("review_id", flat=True)
    )
    rows = []
    for inc in sorted((i for i in created if i.dedup_key), key=lambda i: i.declared_at):
        earlier = last.get(inc.dedup_key)
        last[inc.dedup_key] = inc
        if earlier is None:
            continue
        review = reviews.get(earlier.pk)
        held = review is not None and review.pk in closed and review.pk not in still_open
        rows.append(
            Recurrence(
                incident=inc,
                earlier=earlier,
                earlier_review=review,
                fix_did_not_hold=held,
                matched_on="alert group",
                created_at=inc.declared_at,
            )
        )
    Recurrence.objects.bulk_create(rows, batch_size=2000)


def seed(stdout) -> None:
    generate_history(incidents=300, stdout=stdout)
