"""pg_dump the console's database (custom format, compressed) with a
checksum and a manifest, then delete dumps past the retention."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from opsconsole import audit
from opsconsole.backups import BackupError, create, prune


class Command(BaseCommand):
    help = "Back up the console's PostgreSQL database to BACKUP_DIR (opsconsole-<UTC time>.dump + .sha256 + .json)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output-dir", default=settings.BACKUP_DIR, help="Default: BACKUP_DIR.")
        parser.add_argument(
            "--retention-days",
            type=int,
            default=settings.BACKUP_RETENTION_DAYS,
            help="Delete dumps older than this (default: BACKUP_RETENTION_DAYS).",
        )

    def handle(self, *args, **options) -> None:
        if options["retention_days"] < 1:
            raise CommandError("--retention-days must be at least 1.")
        directory = Path(options["output_dir"])
        try:
            manifest = create(directory)
        except (BackupError, OSError) as exc:
            raise CommandError(f"Backup failed: {exc}") from exc
        removed = prune(directory, options["retention_days"])
        audit.record(
            "manage.py backup_database",
            "backup.create",
            after={k: manifest[k] for k in ("file", "sha256", "bytes", "audit_heads")} | {"pruned": removed},
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup written: {directory / manifest['file']} ({manifest['bytes']} bytes, "
                f"sha256 {manifest['sha256']}, audit heads {' '.join(manifest['audit_heads']) or 'empty'})"
            )
        )
        for name in removed:
            self.stdout.write(f"Deleted (older than {options['retention_days']} days): {name}")
