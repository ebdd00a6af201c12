"""A profile's e-mail is someone's mailbox: it changes only once proven, and
never to an address another account holds."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from opsconsole.models import AuditEntry, User
from opsconsole.roles import Role

pytestmark = pytest.mark.django_db


def _verify_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body).group(1)


def test_the_profile_form_cannot_set_an_email(client_as, make_user):
    make_user(Role.MANAGER, username="boss", email="boss@example.com")
    client = client_as(Role.VIEWER, email="me@example.com")
    data = {"first_name": "M", "last_name": "E", "timezone": "UTC", "email": "boss@example.com"}

    assert client.post(reverse("profile"), data).status_code == 302

    assert User.objects.get(pk=client.user.pk).email == "me@example.com"


def test_a_new_address_is_used_only_after_its_link_is_followed(client_as):
    client = client_as(Role.SRE, email="old@example.com")
    response = client.post(reverse("account_email"), {"action_add": "", "email": "new@example.com"})
    assert response.status_code in (200, 302)
    assert User.objects.get(pk=client.user.pk).email == "old@example.com"
    [message] = [m for m in mail.outbox if "new@example.com" in m.to]
    assert AuditEntry.objects.filter(action="user.email_change_requested", target_id=str(client.user.pk)).exists()

    client.post(_verify_link(message))

    assert User.objects.get(pk=client.user.pk).email == "new@example.com"
    entry = AuditEntry.objects.get(action="user.email_change")
    assert entry.before == {"email": "old@example.com"} and entry.after == {"email": "new@example.com"}


def test_an_address_held_by_another_account_is_never_taken(client_as, make_user):
    boss = make_user(Role.MANAGER, username="boss", email="boss@example.com")
    assert EmailAddress.objects.filter(user=boss, email="boss@example.com", verified=True).exists()
    client = client_as(Role.VIEWER, email="me@example.com")

    client.post(reverse("account_email"), {"action_add": "", "email": "boss@example.com"})
    for message in [m for m in mail.outbox if "boss@example.com" in m.to]:
        link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body)
        if link:
            client.post(link.group(1))

    assert User.objects.get(pk=client.user.pk).email == "me@example.com"
    assert not EmailAddress.objects.filter(user=client.user, email__iexact="boss@example.com", verified=True).exists()
