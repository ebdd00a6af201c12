"""The importer on the five real operations guides, and on odd input:
every encoding read or refused in one line, broken Markdown never a crash,
the same file twice changes nothing."""

import codecs
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from checklists.models import ChecklistTemplate
from opsconsole.audit import AuditEntry
from opsconsole.markdown_reader import UnreadableDocument, decode, read_sections
from runbooks.importer import import_document, runbooks_in
from runbooks.models import Runbook, RunbookVersion

# The five operations guides teams wrote before the console, kept in the repository.
SEEDS = Path(settings.BASE_DIR) / "checklists" / "fixtures" / "seeds"
FILES = sorted(SEEDS.glob("*.txt"))

# title → number of steps, from the five seed documents
EXPECTED_RUNBOOKS = {
    "Messenger Queue Backlog": 5,
    "Risk Engine Degradation": 5,
    "Database Migration Failure": 4,
    "High Queue Backlog": 5,
    "Database Connection Exhaustion": 4,
    "Incident Response Workflow": 5,
    "Startup Sequence": 5,
    "Migrations": 2,
    "Kafka Consumer Lag": 5,
    "Payment Circuit Breaker Stuck Open": 5,
    "Checkout Idempotency Failures": 3,
    "Database Degradation": 4,
    "Application Recovery": 3,
}
EXPECTED_TEMPLATES = {
    "Morning Checklist": 7,
    "Evening Checklist": 6,
    "Release Deployment": 21,
    "Environment Promotion Checklist": 8,
    "Maintenance window checklist": 7,
}


def _import_all(**kwargs):
    return [o for path in FILES for o in import_document(path.read_bytes(), path.name, actor=None, **kwargs)]


@pytest.mark.django_db
def test_all_five_seeds_import_named_runbooks_and_templates():
    assert len(FILES) == 5
    outcomes = _import_all()
    assert not [o for o in outcomes if o.verb == "refused"]
    steps = {r.title: r.current_version.steps.count() for r in Runbook.objects.select_related("current_version")}
    for title, count in EXPECTED_RUNBOOKS.items():
        assert steps.get(title) == count, (title, steps.get(title))
    items = {t.name: t.items.count() for t in ChecklistTemplate.objects.all()}
    for name, count in EXPECTED_TEMPLATES.items():
        assert items.get(name) == count, (name, items.get(name))
    assert "Table of Contents" not in steps  # a numbered list of links is not a runbook


@pytest.mark.django_db
def test_step_content_from_the_seeds():
    _import_all()
    backlog = Runbook.objects.get(title="Messenger Queue Backlog")
    steps = list(backlog.current_version.steps.order_by("order"))
    assert steps[0].title == "Check RabbitMQ queue messages backlog."
    assert steps[3].title.startswith("Scale workers horizontally")
    assert backlog.source == "000_19c1f8062f66547d.txt#operations-maintenance/2-runbooks/21-messenger-queue-backlog"
    high = Runbook.objects.get(title="High Queue Backlog")
    scale = high.current_version.steps.get(title="Scale up workers")
    assert scale.command == "kubectl scale deployment/finaegis-horizon -n finaegis --replicas=5"
    assert "Queue length > 5000" in high.symptoms
    kafka = Runbook.objects.get(title="Kafka Consumer Lag")
    dlq = kafka.current_version.steps.get(order=4)
    assert dlq.command == "docker exec -it redpanda rpk topic consume orders.created.dlq --num 5"
    first = kafka.current_version.steps.get(order=1)
    assert first.command == "docker exec -it redpanda rpk group describe order-service-group"


@pytest.mark.django_db
def test_importing_twice_changes_nothing():
    first = _import_all()
    versions, audits = RunbookVersion.objects.count(), AuditEntry.objects.count()
    templates = ChecklistTemplate.objects.count()
    second = _import_all()
    assert RunbookVersion.objects.count() == versions and ChecklistTemplate.objects.count() == templates
    assert AuditEntry.objects.count() == audits
    assert {o.verb for o in second if o.kind == "runbook"} <= {"unchanged", "skipped"}
    assert sum(o.verb == "created" for o in first) > 15


@pytest.mark.django_db
def test_an_edited_file_writes_a_new_version_of_the_same_runbook():
    doc = b"# Ops\n\n## Fix the queue\n\n1. Look at it\n2. Scale it\n"
    import_document(doc, "ops.md", actor=None)
    outcomes = import_document(doc.replace(b"2. Scale it", b"2. Scale it\n3. Watch it"), "ops.md", actor=None)
    runbook = Runbook.objects.get(title="Fix the queue")
    assert [o.verb for o in outcomes] == ["updated"]
    assert runbook.current_version.number == 2 and runbook.current_version.steps.count() == 3
    assert runbook.versions.get(number=1).steps.count() == 2  # history kept


def test_latin1_crlf_is_read():
    data = "## Sauvegarde réseau\r\n\r\n1. Vérifier l'état\r\n2. Redémarrer – si besoin\r\n".encode("cp1252")
    text, encoding = decode(data, "fr.md")
    assert encoding == "cp1252" and "\r" not in text
    parsed = runbooks_in(read_sections(text))
    assert parsed[0].title == "Sauvegarde réseau" and [s.title for s in parsed[0].steps] == [
        "Vérifier l'état",
        "Redémarrer – si besoin",
    ]


@pytest.mark.parametrize(
    "data",
    [codecs.BOM_UTF8 + "## Café\n\n1. a\n2. b\n".encode(), "## Café\n\n1. a\n2. b\n".encode("utf-16")],
    ids=["utf-8-sig", "utf-16"],
)
def test_byte_order_marks(data):
    text, _ = decode(data)
    assert runbooks_in(read_sections(text))[0].title == "Café"


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 40, b"\x89PNG\r\n\x1a\n" + bytes([7, 1, 2, 3, 4, 5, 6, 8, 14, 15] * 300)],
    ids=["nul-bytes", "control-bytes"],
)
def test_binary_files_are_refused_in_one_line(data):
    with pytest.raises(UnreadableDocument) as refused:
        decode(data, "image.png")
    assert "\n" not in str(refused.value) and "binary" in str(refused.value)


@pytest.mark.django_db
def test_broken_markdown_never_crashes():
    odd = [
        b"",
        b"#\n##\n###   \n",
        b"## Unclosed\n\n```bash\n# restart\nkubectl rollout restart deploy/web\n",
        b"## Empty section\n\n## Another\n\n1.\n2.\n",
        b"| a |\n|---|\n| [ ] x |\n",
        b"- [ ] \n- [x]\n* [ ] ok item\n",
        b">>> > ```\n1. `unterminated\n",
    ]
    for data in odd:
        outcomes = import_document(data, "odd.md", actor=None)
        assert outcomes, data
    unclosed = Runbook.objects.get(title="Unclosed")
    assert unclosed.current_version.steps.get().command == "kubectl rollout restart deploy/web"


@pytest.mark.django_db
def test_command_reports_and_refuses_binaries(tmp_path):
    latin = tmp_path / "latin.md"
    latin.write_bytes("## Purge générale\r\n\r\n1. Arrêter\r\n2. Purger\r\n".encode("latin-1"))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    out, err = StringIO(), StringIO()
    call_command("import_runbooks", str(latin), str(binary), stdout=out, stderr=err)
    text = out.getvalue()
    assert "runbook:1 'Purge générale': created — 2 steps" in text
    assert "blob.bin: file 'blob.bin': refused — blob.bin: looks like a binary file (NUL bytes)" in text
    assert "Traceback" not in text + err.getvalue()
    with pytest.raises(CommandError):
        call_command("import_runbooks", str(binary), stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("import_runbooks", "/nonexistent.md", stdout=StringIO(), stderr=StringIO())


def test_checklist_importer_reads_latin1_and_refuses_binaries(tmp_path):
    from checklists.importer import parse_file

    latin = tmp_path / "latin.md"
    latin.write_bytes("## Contrôle du matin\r\n\r\n- [ ] Vérifier les sauvegardes\r\n- [ ] Café\r\n".encode("latin-1"))
    [checklist] = parse_file(latin)
    assert checklist.title == "Contrôle du matin" and [i.text for i in checklist.items] == [
        "Vérifier les sauvegardes",
        "Café",
    ]
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\xff" * 50)
    with pytest.raises(UnreadableDocument):
        parse_file(binary)


@pytest.mark.django_db
def test_a_bound_action_survives_re_import_and_seed_demo_is_idempotent():
    from io import StringIO

    from runbooks import demo

    demo.seed(StringIO())
    versions = RunbookVersion.objects.count()
    backlog = Runbook.objects.get(title="Messenger Queue Backlog")
    assert backlog.current_version.steps.get(order=4).action == "k8s_scale"
    demo.seed(StringIO())  # imports the same guides again and re-checks the bindings
    assert RunbookVersion.objects.count() == versions
    doc = (
        (SEEDS / "000_19c1f8062f66547d.txt").read_bytes().replace(b"5. If message poison-pill", b"5. If a poison pill")
    )
    [outcome] = [o for o in import_document(doc, "000_19c1f8062f66547d.txt", actor=None) if o.title == backlog.title]
    assert outcome.verb == "updated"
    backlog.refresh_from_db()
    steps = backlog.current_version.steps.order_by("order")
    assert steps[3].action == "k8s_scale" and steps[4].title.startswith("If a poison pill")
