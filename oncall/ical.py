"""A person's shifts as an iCalendar (RFC 5545) feed, built with `icalendar`.

What Google Calendar and Outlook need: VERSION, PRODID, a stable UID per
event (rotation + start, so a re-materialised shift keeps its UID and an
edited one updates in place), DTSTAMP, and DTSTART/DTEND with their
timezone — given in the rotation's zone, with the VTIMEZONE definitions
the library generates from zoneinfo (add_missing_timezones).
"""

import datetime
import zoneinfo

import icalendar
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from opsconsole.models import User

from .models import Shift

PRODID = "-//Ops Console//On-call shifts//EN"
PAST_DAYS = 30


def shift_uid(shift: Shift) -> str:
    return f"oncall-{shift.rotation_id}-{int(shift.starts_at.timestamp())}@opsconsole"


def build(user: User, shifts: list[Shift], now: datetime.datetime | None = None) -> bytes:
    now = now or timezone.now()
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"On-call: {user.get_full_name() or user.get_username()}")
    cal.add("refresh-interval", datetime.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    link = settings.CONSOLE_BASE_URL + reverse("oncall:index")
    for shift in shifts:
        tz = zoneinfo.ZoneInfo(shift.rotation.timezone)
        event = icalendar.Event()
        event.add("uid", shift_uid(shift))
        event.add("dtstamp", now.astimezone(datetime.UTC))
        event.add("dtstart", shift.starts_at.astimezone(tz))
        event.add("dtend", shift.ends_at.astimezone(tz))
        event.add("summary", f"On call: {shift.rotation.name}")
        source = "override" if shift.source == Shift.Source.OVERRIDE else "rotation"
        event.add("description", f"{shift.rotation.name} ({source}). {link}")
        event.add("url", link)
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()
