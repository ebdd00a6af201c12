"""A small alert storm through the real processes: the Alertmanager binary
groups 500 alerts into 50 groups and delivers them to the console under
gunicorn (several workers and threads, bounded connection pools). Exactly
one incident per group, none twice, and every alert's resolve arrives."""

from datetime import UTC, datetime, timedelta

import pytest

from bench.servers import alertmanager, gunicorn, push_alerts, storm_alerts, wait_for
from incidents.models import AlertReceipt, Incident, IncidentSignal, TimelineEvent
from opsconsole import audit_verify
from opsconsole.models import ApiToken
from opsconsole.roles import Role
from tests.processes import production_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GROUPS, PER_GROUP = 50, 10


def test_alertmanager_storm_opens_one_incident_per_group_and_loses_no_resolve(make_user, tmp_path):
    user = make_user(Role.SRE)
    raw, prefix, token_hash = ApiToken.generate()
    ApiToken.objects.create(user=user, name="alertmanager", prefix=prefix, token_hash=token_hash)
    env = production_env(
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY="2",
        WEB_THREADS="4",
        DATABASE_POOL_MAX_SIZE="2",
        DATABASE_POOL_TIMEOUT="1",
    )
    now = datetime.now(UTC)
    starts = (now - timedelta(minutes=5)).isoformat()
    with gunicorn(env, tmp_path / "gunicorn.log") as console:
        with alertmanager(f"{console}/api/alerts/alertmanager", raw, tmp_path / "alertmanager") as am:
            firing = storm_alerts(GROUPS, PER_GROUP, starts, (now + timedelta(hours=1)).isoformat())
            push_alerts(am, firing, batch=100)
            wait_for(
                lambda: AlertReceipt.objects.filter(status="firing").count() == GROUPS * PER_GROUP,
                90,
                "every firing alert to be delivered",
            )
            assert Incident.objects.count() == GROUPS
            ended = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
            push_alerts(am, storm_alerts(GROUPS, PER_GROUP, starts, ended), batch=100)
            wait_for(
                lambda: AlertReceipt.objects.filter(status="resolved").count() == GROUPS * PER_GROUP,
                90,
                "every resolve to be delivered",
            )
    incidents = Incident.objects.all()
    assert incidents.count() == GROUPS
    assert incidents.values("dedup_key").distinct().count() == GROUPS  # no group opened twice
    assert all(key.startswith("alertmanager:") for key in incidents.values_list("dedup_key", flat=True))
    # One signal per alert, none still firing: no resolve was lost.
    assert IncidentSignal.objects.count() == GROUPS * PER_GROUP
    assert not IncidentSignal.objects.filter(firing=True).exists()
    for incident in incidents:
        assert incident.signals.count() == PER_GROUP
        assert TimelineEvent.objects.filter(incident=incident, kind="alert", data__resolved=True).exists()
    # Exactly one receipt per alert notification: retried deliveries counted once.
    assert AlertReceipt.objects.count() == 2 * GROUPS * PER_GROUP
    assert list(audit_verify.verify_chain()) == []
