"""Check the audit log's hash chains; exit non-zero at the first break."""

from django.core.management.base import BaseCommand, CommandError

from opsconsole.audit import current_heads, format_head
from opsconsole.audit_verify import verify_chain
from opsconsole.models import AuditEntry


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chains (one per stream): report the first edited, inserted or "
        "deleted row, including rows deleted from the end of the log."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--expect-head",
            metavar="STREAM:POSITION:HASH",
            action="append",
            default=[],
            help="A head recorded earlier outside the database (the daily log line's audit_heads, or "
            "audit_chain_head_info on /metrics): fail unless that row is still in the log unchanged. "
            "Repeat it for each stream; POSITION:HASH means stream 1.",
        )

    def handle(self, *args, **options) -> None:
        expected = [_parse_head(value) for value in options["expect_head"]]
        problem = next(verify_chain(), None)
        if problem is not None:
            raise CommandError(f"Audit log chain is broken in stream {problem.stream}: {problem.message}")
        for stream, position, hash_ in expected:
            if not AuditEntry.objects.filter(stream=stream, position=position, hash=hash_).exists():
                raise CommandError(
                    f"Audit log does not hold the recorded head (stream {stream}, row {position}): rows were "
                    "deleted or rewritten together with the head record."
                )
        count = AuditEntry.objects.count()
        heads = " ".join(format_head(head) for head in current_heads() if head.position)
        self.stdout.write(self.style.SUCCESS(f"Audit log intact: {count} rows verified; heads {heads or '-'}"))


def _parse_head(value: str) -> tuple[int, int, str]:
    parts = value.split(":")
    if len(parts) == 2:
        parts.insert(0, "1")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[2]) != 64:
        raise CommandError("--expect-head takes STREAM:POSITION:HASH, e.g. 3:1234:9f86d081… (64 hex characters).")
    return int(parts[0]), int(parts[1]), parts[2].lower()
