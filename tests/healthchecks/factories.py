from __future__ import annotations

import itertools

from django.utils import timezone

from healthchecks.models import Check
from opsconsole.models import Service

_n = itertools.count(1)


def make_service(name: str | None = None) -> Service:
    name = name or f"Service {next(_n)}"
    return Service.objects.create(name=name, slug=name.lower().replace(" ", "-"))


def make_check(service: Service | None = None, **fields) -> Check:
    fields.setdefault("name", f"check {next(_n)}")
    fields.setdefault("kind", Check.Kind.TCP)
    fields.setdefault("config", {"host": "127.0.0.1", "port": 1})
    fields.setdefault("next_due_at", timezone.now())
    return Check.objects.create(service=service or make_service(), **fields)
