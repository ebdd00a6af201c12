"""manage.py import_checklists FILE [--update]: create checklist templates
from the checklists found in a Markdown document."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from checklists import services
from checklists.importer import parse_file


class Command(BaseCommand):
    help = "Import the checklists of a Markdown file as templates (one per checklist). Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--update", action="store_true", help="Replace the items of existing templates.")
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be imported.")

    def handle(self, *args, files: list[Path], update: bool, dry_run: bool, **options) -> None:
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            found = parse_file(path)
            if not found:
                self.stdout.write(f"{path}: no checklist found")
            for parsed in found:
                if dry_run:
                    self.stdout.write(f"{path}:{parsed.line}: {parsed.title} ({len(parsed.items)} items)")
                    continue
                template, created = services.template_import(
                    actor=None, name=parsed.title, parsed=parsed, update=update
                )
                verb = "created" if created else ("updated" if update else "exists, kept")
                self.stdout.write(f"{path}:{parsed.line}: {template.name} — {verb} ({len(parsed.items)} items)")
