"""The importer on the real operations guides (checklists/fixtures/seeds)."""

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from checklists.importer import clean_title, parse_file, parse_markdown
from checklists.models import ChecklistTemplate

# The five operations guides teams wrote before the console, kept in the repository.
SEEDS = Path(settings.BASE_DIR) / "checklists" / "fixtures" / "seeds"
FILES = sorted(SEEDS.glob("*.txt"))


def test_all_five_seed_files_are_found():
    assert len(FILES) == 5, f"expected the five seeds in {SEEDS}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_seed_parses_and_copies_match(path):
    found = parse_file(path)  # must not raise on any of them
    assert all(checklist.items for checklist in found)


def _by_title(name):
    return {c.title: c for path in FILES if path.name.startswith(name) for c in parse_file(path)}


def test_morning_and_evening_checklists():
    found = _by_title("001")
    morning, evening = found["Morning Checklist"], found["Evening Checklist"]
    assert [i.text for i in morning.items][:2] == [
        "Review overnight alerts and incidents",
        "Check dashboard for anomalies",
    ]
    assert len(morning.items) == 7 and all(i.required for i in morning.items)
    assert evening.items[-1].text == "Hand off to on-call if needed" and not evening.items[-1].required
    assert len(evening.items) == 6


def test_release_deployment_has_sections_and_rollback_triggers():
    release = _by_title("001")["Release Deployment"]
    sections = list(dict.fromkeys(i.section for i in release.items))
    assert sections == ["Pre-Deployment", "Deployment Steps", "Post-Deployment", "Rollback Trigger"]
    assert len(release.items) == 21
    trigger = [i for i in release.items if i.section == "Rollback Trigger"]
    assert [i.text for i in trigger] == [
        "Error rate > 5%",
        "P95 latency > 2s",
        "Critical features failing",
        "Payment processing failures",
    ]
    assert "immediately rollback" in trigger[0].help
    # The inline status picker and the PIR placeholders are not items.
    assert not any("Pending" in i.text for i in release.items)
    all_texts = [i.text for c in _by_title("001").values() for i in c.items]
    assert "[Immediate fix]" not in all_texts


def test_environment_promotion_table():
    promotion = _by_title("002")["Environment Promotion Checklist"]
    assert [i.text for i in promotion.items][0] == "JWT_SECRET strong"
    assert len(promotion.items) == 8 and promotion.items[-1].text == "Migrations applied"


def test_maintenance_window_inside_a_shell_block():
    maintenance = _by_title("003")["Maintenance window checklist"]
    assert len(maintenance.items) == 7 and maintenance.items[0].text == "Notify users 24 hours in advance"


def test_guides_without_checklists_give_nothing():
    assert _by_title("000") == {} and _by_title("004") == {}


def test_parser_edge_cases():
    text = """# Ops
## Daily
- [x] Done already (optional)
* [ ] Star item
1. [ ] Numbered item

| Item | Check |
|---|---|
| Certs valid | `openssl s_client` shows > 14 days |
| | |
"""
    found = parse_markdown(text)
    assert [c.title for c in found] == ["Daily", "Daily"]
    assert [i.text for i in found[0].items] == ["Done already", "Star item", "Numbered item"]
    assert not found[0].items[0].required
    assert found[1].items[0].expected_evidence == "`openssl s_client` shows > 14 days"
    assert len(found[1].items) == 1
    assert clean_title("Release Deployment: v[VERSION]") == "Release Deployment"
    assert (
        parse_markdown("") == []
        and parse_markdown("```\n[ ] unterminated fence")[0].items[0].text == "unterminated fence"
    )


@pytest.mark.django_db
def test_import_command_is_idempotent():
    out = StringIO()
    call_command("import_checklists", str(SEEDS / "001_cd34f7a97961a3b9.txt"), stdout=out)
    assert "Morning Checklist — created (7 items)" in out.getvalue()
    assert ChecklistTemplate.objects.count() == 4
    call_command("import_checklists", str(SEEDS / "001_cd34f7a97961a3b9.txt"), stdout=StringIO())
    assert ChecklistTemplate.objects.count() == 4
    morning = ChecklistTemplate.objects.get(name="Morning Checklist")
    assert morning.items.count() == 7
    with pytest.raises(CommandError):
        call_command("import_checklists", "/nonexistent.md")
