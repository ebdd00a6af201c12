"""Validators shared by every app."""

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

_HTTP_URL = URLValidator(schemes=["http", "https"])


def validate_link_url(value: str) -> None:
    """A URL the console renders as a link: an absolute http(s) address only.

    Scheme-relative (`//evil.example`), `javascript:`, `data:` and relative
    paths are refused: a link must say where it goes.
    """
    try:
        _HTTP_URL(value)
    except ValidationError:
        raise ValidationError(
            "Give an absolute web address starting with https:// or http://.", code="invalid_link"
        ) from None
