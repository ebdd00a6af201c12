"""Demo incidents from the seeds' scenarios (001: queue backlog, database
connection exhaustion, certificate expiry), in various states, each with a
timeline. Idempotent: incidents are found by title and not declared twice."""

from opsconsole.models import Service, User

from . import services
from .models import Incident, Status

SCENARIOS = [
    {
        "title": "Database connection exhaustion on order_db",
        "severity": 2,
        "services": ["postgresql", "order-worker"],
        "commander": "commander",
        "responders": ["sre"],
        "to": [Status.ACKNOWLEDGED, Status.MITIGATED],
        "summary": '"Too many connections" errors; slow responses and connection timeouts.',
        "impact": "Checkout slow for ~20% of users; some orders time out.",
        "notes": [
            (
                "sre",
                "`SHOW STATUS LIKE 'Threads_connected'` → 498/500. Idle connections from the worker pool.",
            ),
            ("sre", "Killed idle connections older than 300 s; pool max lowered from 100 to 60."),
            (
                "commander",
                "Restarted PHP-FPM to reset connections; errors dropping. Watching for 30 min.",
            ),
        ],
        "alert": ("DatabaseConnectionIssues", "database connections > 80% of max for 5m"),
    },
    {
        "title": "High queue backlog: default queue > 5000",
        "severity": 3,
        "services": ["message-queue", "order-worker"],
        "commander": None,
        "responders": [],
        "to": [],
        "summary": "Queue length > 5000; job processing delays; users report pending operations.",
        "notes": [],
        "alert": ("JobQueueBacklog", "job queue size 6120 > 1000"),
    },
    {
        "title": "TLS certificate expired on the API ingress",
        "severity": 1,
        "services": ["checkout-api"],
        "commander": "commander",
        "responders": ["sre"],
        "to": [Status.ACKNOWLEDGED, Status.MITIGATED, Status.RESOLVED],
        "summary": "SSL/TLS errors and HTTPS failures for all API clients.",
        "impact": "API unavailable over HTTPS for 25 minutes.",
        "notes": [
            (
                "sre",
                "`openssl s_client … | openssl x509 -noout -dates` → notAfter was 10 minutes ago.",
            ),
            (
                "sre",
                "cert-manager `Certificate` not ready: ACME challenge failing. Deleted the secret to force renewal.",
            ),
            ("commander", "New certificate issued; restarted the ingress controller. Errors gone."),
        ],
        "alert": None,
    },
]


def seed(stdout) -> None:
    services.ensure_defaults()
    users = {u.username: u for u in User.objects.filter(username__in=["sre", "commander", "manager"])}
    system = users.get("commander")
    for scenario in SCENARIOS:
        if Incident.objects.filter(title=scenario["title"]).exists():
            continue
        commander = users.get(scenario["commander"]) if scenario["commander"] else None
        found = list(Service.objects.filter(slug__in=scenario["services"]))
        if scenario["alert"]:
            name, text = scenario["alert"]
            incident = services.open_or_update_from_source(
                dedup_key=f"demo:{name}",
                title=scenario["title"],
                severity=scenario["severity"],
                services=found,
                text=text,
                data={"alertname": name},
            )
            if commander:
                services.incident_set_roles(
                    incident=incident,
                    actor=system,
                    commander=commander,
                    responders=[users[u] for u in scenario["responders"] if u in users],
                )
        else:
            incident = services.incident_declare(
                actor=commander,
                title=scenario["title"],
                severity=scenario["severity"],
                summary=scenario["summary"],
                services=found,
                commander=commander,
            )
            services.incident_set_roles(
                incident=incident,
                actor=commander,
                commander=commander,
                responders=[users[u] for u in scenario["responders"] if u in users],
            )
        for username, text in scenario["notes"]:
            author = users.get(username)
            if author:
                services.incident_add_note(incident=incident, actor=author, text=text)
        for to in scenario["to"]:
            services.incident_transition(incident=incident, actor=system, to=to, confirm_firing=True)
        if scenario.get("impact") and system:
            services.incident_update_details(
                incident=incident,
                actor=system,
                title=scenario["title"],
                summary=scenario["summary"],
                customer_impact=scenario["impact"],
                services=found,
                tags=[],
            )
        stdout.write(f"  incident {incident.reference}: {incident.title}")

    from .reviews.demo import seed as seed_history

    seed_history(stdout)
