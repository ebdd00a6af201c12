"""Date arithmetic for review due dates."""

from datetime import date, timedelta


def add_business_days(start: date, days: int) -> date:
    """`days` working days (Mon–Fri) after `start`; holidays are not known."""
    current = start
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current
