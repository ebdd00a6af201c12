import pytest
from django.core.exceptions import ValidationError

from opsconsole.models import Service, ServiceLink
from opsconsole.validators import validate_link_url


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>",
        "/runbooks/1",
        "evil.example",
        "ftp://files.example/x",
        "https://",
        "https://exa mple.com",
        "https://example.com/\nSet-Cookie:x",
    ],
)
def test_link_urls_refuse_anything_but_absolute_http(value):
    with pytest.raises(ValidationError):
        validate_link_url(value)


@pytest.mark.parametrize("value", ["https://wiki.example.com/runbooks/checkout", "http://10.0.0.1:8080/x?y=1#z"])
def test_link_urls_accept_absolute_http(value):
    validate_link_url(value)


@pytest.mark.django_db
def test_every_link_field_uses_the_one_validator():
    """Service links and checklist runbook links: a model form (the admin's too) refuses //evil.example."""
    from checklists.models import RunItem, TemplateItem

    link = ServiceLink(service=Service(name="x", slug="x"), title="Runbook", url="//evil.example")
    with pytest.raises(ValidationError, match="absolute web address"):
        link.clean_fields(exclude=["service"])
    for model in (TemplateItem, RunItem):
        assert validate_link_url in model._meta.get_field("runbook_url").validators
