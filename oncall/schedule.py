"""Computing a rotation's schedule: pure functions, no database writes.

The base schedule: shift k starts at `handoff_time` on `start_date`, plus k
shift lengths of wall-clock time in the rotation's timezone, and belongs to
member k mod n. Adding hours to the *naive local* time and only then
attaching the zone is what keeps a 09:00 handoff at 09:00 local on both
sides of a DST change (that day's shift is 23 or 25 hours long). A local
time that does not exist (inside a spring-forward gap) resolves with fold=0,
i.e. with the offset before the change, which is still strictly increasing.

Overrides are laid over the base schedule: whoever the base says, the
override's person holds that range. The final schedule is a list of
non-overlapping segments, adjacent segments of one person merged.
"""

import datetime
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UTC = datetime.UTC


@dataclass(frozen=True)
class Segment:
    user_id: int
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    source: str = "rotation"  # or "override"


def _slot_start(anchor: datetime.datetime, hours: int, k: int, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The k-th handoff: naive wall-clock arithmetic, then the zone."""
    return (anchor + datetime.timedelta(hours=hours * k)).replace(tzinfo=tz).astimezone(UTC)


def base_segments(
    *,
    member_ids: Sequence[int],
    start_date: datetime.date,
    handoff_time: datetime.time,
    hours: int,
    tz_name: str,
    window_start: datetime.datetime,
    window_end: datetime.datetime,
) -> list[Segment]:
    """The rotation's own shifts overlapping [window_start, window_end), unclipped."""
    if not member_ids or hours < 1 or window_end <= window_start:
        return []
    tz = zoneinfo.ZoneInfo(tz_name)
    anchor = datetime.datetime.combine(start_date, handoff_time)  # naive local
    # First slot that may overlap the window: estimate with UTC hours, step back
    # two slots to absorb any offset difference, then walk forward.
    first_utc = _slot_start(anchor, hours, 0, tz)
    k = max(int((window_start - first_utc).total_seconds() // (hours * 3600)) - 2, 0)
    segments = []
    while True:
        start = _slot_start(anchor, hours, k, tz)
        if start >= window_end:
            break
        end = _slot_start(anchor, hours, k + 1, tz)
        if end > window_start and end > start:
            segments.append(Segment(member_ids[k % len(member_ids)], start, end))
        k += 1
    return segments


def apply_overrides(base: Iterable[Segment], overrides: Iterable[Segment]) -> list[Segment]:
    """The final schedule: overrides cut into the base segments and take their place."""
    overrides = sorted(overrides, key=lambda s: s.starts_at)
    result: list[Segment] = []
    for segment in base:
        pieces = [(segment.starts_at, segment.ends_at)]
        for override in overrides:
            if override.starts_at >= segment.ends_at:
                break
            next_pieces = []
            for start, end in pieces:
                if override.ends_at <= start or override.starts_at >= end:
                    next_pieces.append((start, end))
                    continue
                if start < override.starts_at:
                    next_pieces.append((start, override.starts_at))
                if override.ends_at < end:
                    next_pieces.append((override.ends_at, end))
            pieces = next_pieces
        result.extend(Segment(segment.user_id, s, e, segment.source) for s, e in pieces)
    result.extend(overrides)
    return merge(result)


def merge(segments: Iterable[Segment]) -> list[Segment]:
    """Sorted, with touching segments of the same person and source joined."""
    merged: list[Segment] = []
    for segment in sorted(segments, key=lambda s: (s.starts_at, s.ends_at)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.user_id == segment.user_id
            and last.source == segment.source
            and last.ends_at == segment.starts_at
        ):
            merged[-1] = Segment(last.user_id, last.starts_at, segment.ends_at, last.source)
        else:
            merged.append(segment)
    return merged


def final_segments(
    *,
    member_ids: Sequence[int],
    start_date: datetime.date,
    handoff_time: datetime.time,
    hours: int,
    tz_name: str,
    overrides: Iterable[Segment],
    window_start: datetime.datetime,
    window_end: datetime.datetime,
) -> list[Segment]:
    """The schedule after overrides, for segments overlapping the window (unclipped)."""
    base = base_segments(
        member_ids=member_ids,
        start_date=start_date,
        handoff_time=handoff_time,
        hours=hours,
        tz_name=tz_name,
        window_start=window_start,
        window_end=window_end,
    )
    relevant = [o for o in overrides if o.ends_at > window_start and o.starts_at < window_end]
    return [s for s in apply_overrides(base, relevant) if s.ends_at > window_start and s.starts_at < window_end]
