"""Check the audit log's hash chain; exit non-zero at the first break."""

from django.core.management.base import BaseCommand, CommandError

from opsconsole.audit import current_head, verify_chain
from opsconsole.models import AuditEntry


class Command(BaseCommand):
    help = (
        "Verify the audit log hash chain: report the first edited, inserted or deleted row, "
        "including rows deleted from the end of the log."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A head recorded earlier outside the database (the daily log line, or "
            "audit_chain_head_info on /metrics): fail unless that row is still in the log unchanged.",
        )

    def handle(self, *args, **options) -> None:
        expected = _parse_head(options["expect_head"]) if options["expect_head"] else None
        problem = next(verify_chain(), None)
        if problem is not None:
            raise CommandError(f"Audit log chain is broken at row {problem.seq}: {problem.message}")
        if expected is not None and not AuditEntry.objects.filter(seq=expected[0], hash=expected[1]).exists():
            raise CommandError(
                f"Audit log does not hold the recorded head (row {expected[0]}): rows were deleted or rewritten "
                "together with the head record."
            )
        head = current_head()
        count = AuditEntry.objects.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit log intact: {count} rows verified; head {head.seq if head else 0}:{head.hash if head else ''}"
            )
        )


def _parse_head(value: str) -> tuple[int, str]:
    seq, _, hash_ = value.partition(":")
    if not seq.isdigit() or len(hash_) != 64:
        raise CommandError("--expect-head takes SEQ:HASH, e.g. 1234:9f86d081… (64 hex characters).")
    return int(seq), hash_.lower()
