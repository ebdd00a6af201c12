"""manage.py import_runbooks PATH... : runbooks and checklist templates from Markdown files."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from runbooks.importer import import_document


class Command(BaseCommand):
    help = "Import runbooks (numbered steps, command blocks) and checklist templates ([ ] lists) from Markdown."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be imported.")

    def handle(self, *args, paths: list[Path], dry_run: bool, **options) -> None:
        counts: dict[str, int] = {}
        refused = 0
        for path in paths:
            if not path.is_file():
                self.stderr.write(f"{path}: no such file")
                refused += 1
                continue
            for outcome in import_document(path.read_bytes(), path.name, actor=None, dry_run=dry_run):
                counts[outcome.verb] = counts.get(outcome.verb, 0) + 1
                refused += outcome.verb == "refused"
                self.stdout.write(f"{path.name}: {outcome}")
        self.stdout.write(", ".join(f"{n} {verb}" for verb, n in sorted(counts.items())) or "nothing found")
        if refused and refused == len(paths):
            raise CommandError("no file could be imported")
