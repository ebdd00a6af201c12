"""Check the audit log's hash chain; exit non-zero at the first break."""

from django.core.management.base import BaseCommand, CommandError

from opsconsole.audit import verify_chain
from opsconsole.models import AuditEntry


class Command(BaseCommand):
    help = "Verify the audit log hash chain: report the first edited, inserted or deleted row."

    def handle(self, *args, **options) -> None:
        problem = next(verify_chain(), None)
        if problem is not None:
            raise CommandError(f"Audit log chain is broken at row {problem.seq}: {problem.message}")
        count = AuditEntry.objects.count()
        self.stdout.write(self.style.SUCCESS(f"Audit log intact: {count} rows verified."))
