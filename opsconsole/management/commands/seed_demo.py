"""Load demo data: one user per role, the monitored services, and each app's
demo records (its `demo.seed()`). Idempotent: running it twice changes nothing."""

import importlib

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from opsconsole.models import Service, ServiceLink, User
from opsconsole.roles import Role

DEMO_USERS = [
    ("viewer", "Vera", "Viewer", Role.VIEWER, "Europe/Paris"),
    ("sre", "Sam", "Reyes", Role.SRE, "Europe/London"),
    ("commander", "Chris", "Mendes", Role.INCIDENT_COMMANDER, "America/New_York"),
    ("manager", "Maya", "Ng", Role.MANAGER, "Asia/Singapore"),
    ("admin", "Ada", "Admin", Role.ADMIN, "UTC"),
]

DEMO_SERVICES = [
    (
        "Ops Console",
        "ops-console",
        "This console: web, worker and beat.",
        "SRE",
        2,
        [("Health", "http://127.0.0.1:8000/healthz"), ("Metrics", "http://127.0.0.1:8000/metrics")],
    ),
    (
        "Checkout API",
        "checkout-api",
        "Customer-facing REST API (customer-facing-service, port 8080).",
        "Payments",
        1,
        [("Runbook", "https://wiki.example.com/runbooks/checkout")],
    ),
    (
        "Order worker",
        "order-worker",
        "Consumes orders.created, persists orders, talks to the payment gateway.",
        "Payments",
        1,
        [],
    ),
    (
        "PostgreSQL",
        "postgresql",
        "Primary database (customer_db, order_db) with a streaming replica.",
        "Platform",
        1,
        [],
    ),
    ("Redis", "redis", "Cache, rate limiter and job queues.", "Platform", 2, []),
    ("Message queue", "message-queue", "RabbitMQ/Redpanda broker with dead-letter queues.", "Platform", 2, []),
]


class Command(BaseCommand):
    help = "Load demo data (users per role, services, each app's demo records). Idempotent."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            self._users()
            self._services()
        for app in apps.get_app_configs():
            try:
                module = importlib.import_module(f"{app.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app.name}.demo":
                    raise
                continue
            with transaction.atomic():
                module.seed(self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Sign in with one of these users:"))
        for username, _first, _last, role, _tz in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {settings.DEMO_PASSWORD:<18} {role.value}")

    def _users(self) -> None:
        for username, first, last, role, tz in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com", "timezone": tz},
            )
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                if role == Role.ADMIN:
                    user.is_staff = user.is_superuser = True
                user.save()
            # get_or_create: a flushed test database (TransactionTestCase) has lost
            # the groups that migration 0002 made.
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])

    def _services(self) -> None:
        for name, slug, description, team, tier, links in DEMO_SERVICES:
            service, _ = Service.objects.get_or_create(
                slug=slug, defaults={"name": name, "description": description, "owner_team": team, "tier": tier}
            )
            for title, url in links:
                ServiceLink.objects.get_or_create(service=service, title=title, defaults={"url": url})
