"""Restore a dump written by backup_database into an EMPTY database, then
prove it: the checksum before, `verify_audit` (with the head recorded at
dump time) after."""

import os
import subprocess  # nosec B404  # manage.py verify_audit on the restored database
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from opsconsole.backups import BackupError, Target, manifest_of, restore, verify_checksum


class Command(BaseCommand):
    help = (
        "Restore an opsconsole-*.dump into an empty PostgreSQL database (createdb it first), "
        "then verify its audit log. The console's own database is never overwritten."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dump", help="The .dump file (its .sha256 must be beside it).")
        parser.add_argument(
            "--database-url",
            required=True,
            help="The empty database to restore into, e.g. postgres://user:pass@host:5432/opsconsole_restore",
        )

    def handle(self, *args, **options) -> None:
        dump = Path(options["dump"])
        if not dump.is_file():
            raise CommandError(f"{dump} does not exist.")
        try:
            target = Target.from_url(options["database_url"])
            checksum = verify_checksum(dump)
            self.stdout.write(f"Checksum OK: sha256 {checksum}")
            restore(dump, target)
        except BackupError as exc:
            raise CommandError(f"Restore refused: {exc}") from exc
        self.stdout.write(f"Restored {dump.name} into {target.name}.")
        manifest = manifest_of(dump)
        # audit_heads: one per stream; audit_head: a dump made before the streams.
        heads = manifest.get("audit_heads") or ([manifest["audit_head"]] if manifest.get("audit_head") else [])
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "verify_audit"]
        for head in heads:
            command += ["--expect-head", head]
        result = subprocess.run(  # nosec B603  # our own manage.py, arguments as a list
            command,
            env={**os.environ, "DATABASE_URL": target.url()},
            capture_output=True,
            text=True,
            timeout=3600,
        )
        self.stdout.write(result.stdout.strip())
        if result.returncode != 0:
            raise CommandError(f"The restored audit log does not verify: {result.stderr.strip()[-1000:]}")
