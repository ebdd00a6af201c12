"""Verifying the audit log's hash chains (opsconsole.audit writes them):
every row's hash recomputed, each stream's positions contiguous, its last row
the head's."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .audit import GENESIS_HASH, compute_hash, current_heads
from .models import AuditEntry, AuditHead


@dataclass(frozen=True)
class ChainProblem:
    stream: int
    position: int
    message: str


class _ChainWalk:
    """Walks one stream's rows in position order, remembering where it has got to."""

    def __init__(self, stream: int) -> None:
        self.stream, self.expected, self.prev_hash = stream, 1, GENESIS_HASH

    def problem(self, position: int, message: str) -> ChainProblem:
        return ChainProblem(self.stream, position, f"stream {self.stream}: {message}")

    def check(self, entries: Iterable[AuditEntry]) -> Iterator[ChainProblem]:
        for entry in entries:
            at = entry.position
            if at != self.expected:
                yield self.problem(
                    at,
                    f"rows {self.expected}..{at - 1} are missing (deleted)"
                    if at > self.expected
                    else f"row {at} is out of sequence (inserted)",
                )
            if entry.prev_hash != self.prev_hash:
                yield self.problem(at, f"row {at} does not follow the row before it (inserted or deleted)")
            if compute_hash(entry) != entry.hash:
                yield self.problem(at, f"row {at} (#{entry.seq}) was edited: its content no longer matches its hash")
            self.expected, self.prev_hash = at + 1, entry.hash

    @property
    def last(self) -> int:
        return self.expected - 1

    def head_problem(self, position: int, hash_: str) -> ChainProblem | None:
        if position < self.last:
            return self.problem(
                position + 1, f"rows {position + 1}..{self.last} are beyond the chain's head (inserted)"
            )
        if position > self.last:
            return self.problem(
                self.last + 1, f"rows {self.last + 1}..{position} are missing from the end of the log (deleted)"
            )
        if hash_ != self.prev_hash:
            return self.problem(position, f"row {position} is not the row the chain's head records (rewritten)")
        return None


def verify_chain() -> Iterator[ChainProblem]:
    """Yield every break in every stream, in order. No problems means an intact log.

    One pass over the table in (stream, position) order, then each stream's
    end against its head record (rows appended while the walk ran are walked
    too: an append commits its row and its head together, so a head past the
    last row walked is either newer rows or deleted ones).
    """
    walks: dict[int, _ChainWalk] = {}
    for entry in AuditEntry.objects.order_by("stream", "position").iterator(chunk_size=2000):
        walk = walks.get(entry.stream) or walks.setdefault(entry.stream, _ChainWalk(entry.stream))
        yield from walk.check([entry])
    heads = {head.id: head for head in current_heads()}
    for stream in sorted(walks.keys() | heads.keys()):
        walk = walks.get(stream) or _ChainWalk(stream)
        yield from _check_end(walk, heads.get(stream))


def _check_end(walk: _ChainWalk, head: AuditHead | None) -> Iterator[ChainProblem]:
    while True:
        if head is None:
            if walk.last:
                yield walk.problem(walk.last, "the chain's head record is missing (deleted)")
            return
        if head.position > walk.last:
            newer = list(
                AuditEntry.objects.filter(
                    stream=walk.stream, position__gt=walk.last, position__lte=head.position
                ).order_by("position")
            )
            if newer:
                yield from walk.check(newer)
                head = AuditHead.objects.filter(pk=walk.stream).first()
                continue
        if problem := walk.head_problem(head.position, head.hash):
            yield problem
        return
