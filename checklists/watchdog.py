"""The watchdog's question for checklists (registered in apps.py): schedule
slots of the last day whose time passed more than the grace ago without a
run (create_due_runs did not run: beat or the default worker was down).
A slot missed for longer than its due_within is never created after the
fact, so it stays reported until it is a day old."""

import datetime

from opsconsole.watchdog import Finding

from .models import ChecklistRun, Schedule

WINDOW = datetime.timedelta(days=1)


def missing_slot_runs(now: datetime.datetime, grace: datetime.timedelta) -> Finding:
    start, end = now - WINDOW, now - grace
    schedules = list(Schedule.objects.filter(enabled=True, template__is_active=True).select_related("template"))
    existing = set(
        ChecklistRun.objects.filter(schedule__in=schedules, slot__gt=start, slot__lte=end).values_list(
            "schedule_id", "slot"
        )
    )
    missing = sorted(
        (slot, schedule.template.name)
        for schedule in schedules
        for slot in schedule.slots_between(max(start, schedule.created_at), end)
        if (schedule.pk, slot) not in existing
    )
    if not missing:
        return Finding()
    examples = [f"{name} at {slot:%Y-%m-%d %H:%M}Z" for slot, name in missing[:5]]
    return Finding(len(missing), missing[0][0], examples)
