import datetime

from django.utils import timezone

from oncall.models import Rotation, Shift


def shift(rotation: Rotation, user, start_hours: float, end_hours: float) -> Shift:
    """A materialised shift from now+start_hours to now+end_hours (straight into
    the table, as rotation_materialise would write it) for selector and page tests."""
    now = timezone.now()
    return Shift.objects.create(
        rotation=rotation,
        user=user,
        starts_at=now + datetime.timedelta(hours=start_hours),
        ends_at=now + datetime.timedelta(hours=end_hours),
    )


def seed_policy(make_user) -> dict:
    """The seeds' ladder (L1 on-call engineer 15 min, L2 team lead 30 min, L3 CTO
    1 h, L4 CEO 2 h) for an "API" service, with ana on call now in its rotation."""
    from oncall.models import EscalationLevel, EscalationPolicy, PolicyService
    from opsconsole.models import Service
    from opsconsole.roles import Role

    hook = "http://127.0.0.1:9/hook"
    service = Service.objects.create(name="API", slug="api", webhook_url=hook)
    ana = make_user(Role.SRE, username="oncall-ana", first_name="Ana", email="ana@example.com")
    people = {
        name: make_user(Role.MANAGER, username=name, email=f"{name}@example.com") for name in ("lead", "cto", "ceo")
    }
    rotation = Rotation.objects.create(name="API on-call")
    now = timezone.now()
    Shift.objects.create(
        rotation=rotation,
        user=ana,
        starts_at=now - datetime.timedelta(days=400),
        ends_at=now + datetime.timedelta(days=400),
    )
    policy = EscalationPolicy.objects.create(name="API ladder")
    PolicyService.objects.create(policy=policy, service=service)
    EscalationLevel.objects.create(
        policy=policy, position=1, name="On-call engineer", rotation=rotation, wait_minutes=15
    )
    for position, (name, username, wait) in enumerate(
        [("Team lead", "lead", 30), ("CTO", "cto", 60), ("CEO", "ceo", 120)], start=2
    ):
        level = EscalationLevel.objects.create(policy=policy, position=position, name=name, wait_minutes=wait)
        level.users.add(people[username])
    return {
        "service": service,
        "policy": policy,
        "rotation": rotation,
        "ana": ana,
        "hook": hook,
        "declarer": make_user(Role.SRE, username="declarer"),
        "commander": make_user(Role.INCIDENT_COMMANDER, username="ic"),
        **people,
    }


def policy_post(
    prefix: str, *, name: str, levels: list[dict], services=(), version=None, is_default=False, initial: int = 0
) -> dict:
    """The policy editor's POST: the policy's fields and its levels formset
    (`levels`: dicts of name, wait_minutes, rotation pk, users pks, ORDER, DELETE)."""
    data = {
        f"{prefix}-name": name,
        f"{prefix}-services": [s.pk for s in services],
        f"{prefix}-levels-TOTAL_FORMS": str(len(levels)),
        f"{prefix}-levels-INITIAL_FORMS": str(initial),
        f"{prefix}-levels-MIN_NUM_FORMS": "0",
        f"{prefix}-levels-MAX_NUM_FORMS": "20",
    }
    if version is not None:
        data[f"{prefix}-version"] = str(version)
    if is_default:
        data[f"{prefix}-is_default"] = "on"
    for i, level in enumerate(levels):
        row = f"{prefix}-levels-{i}-"
        data[row + "name"] = level.get("name", "")
        data[row + "wait_minutes"] = str(level.get("wait_minutes", ""))
        data[row + "rotation"] = str(level.get("rotation") or "")
        data[row + "users"] = [str(u) for u in level.get("users", [])]
        data[row + "ORDER"] = str(level.get("ORDER", i + 1))
        if level.get("DELETE"):
            data[row + "DELETE"] = "on"
    return data
