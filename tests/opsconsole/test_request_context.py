import pytest

from opsconsole.models import AuditEntry, User
from opsconsole.roles import Role


@pytest.mark.django_db
def test_request_id_is_echoed_or_generated(client):
    given = client.get("/livez", headers={"X-Request-ID": "req-abc.123"})
    assert given["X-Request-ID"] == "req-abc.123"
    made = client.get("/livez", headers={"X-Request-ID": "bad id with spaces"})
    assert made["X-Request-ID"] != "bad id with spaces"
    assert len(made["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_profile_change_is_audited_with_the_request_id(client_as):
    client = client_as(Role.SRE)
    response = client.post(
        "/profile/",
        {"timezone": "Asia/Tokyo", "first_name": "S", "last_name": "R"},
        headers={"X-Request-ID": "profile-change-1"},
    )
    assert response.status_code == 302
    assert User.objects.get(pk=client.user.pk).timezone == "Asia/Tokyo"
    entry = AuditEntry.objects.get(action="user.profile_update")
    assert entry.request_id == "profile-change-1"
    assert entry.before["timezone"] == "UTC" and entry.after["timezone"] == "Asia/Tokyo"


@pytest.mark.django_db
def test_bad_timezone_is_a_form_error_and_changes_nothing(client_as):
    client = client_as(Role.SRE)
    response = client.post("/profile/", {"timezone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert User.objects.get(pk=client.user.pk).timezone == "UTC"
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_times_are_shown_in_the_users_timezone(client_as):
    client = client_as(Role.VIEWER, timezone="America/New_York")
    page = client.get("/").content.decode()
    assert "America/New_York" in page


@pytest.mark.django_db
def test_a_users_timezone_does_not_outlive_their_request(client_as):
    from django.utils import timezone

    client_as(Role.VIEWER, timezone="Asia/Tokyo").get("/")
    assert timezone.get_current_timezone_name() == "UTC"
