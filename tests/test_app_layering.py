"""The app graph of docs/architecture.md, enforced: an app imports only apps
below it, and the core (opsconsole) imports no product app.

Imports are read from the source (ast), including imports inside functions
and under TYPE_CHECKING, so a lazy import cannot hide a cycle. Migrations are
left out: they name other apps in `dependencies`, not by importing them.
"""

import ast
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top, as in docs/architecture.md. An app may import the ones before it.
LAYERS = ["opsconsole", "notifications", "incidents", "healthchecks", "runbooks", "checklists", "oncall"]


def _imported_apps(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top in LAYERS:
                found.add((top, node.lineno))
    return found


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.relative_to(ROOT).parts:
            yield path


def layering_violations(root: Path = ROOT) -> list[str]:
    problems = []
    for level, app in enumerate(LAYERS):
        for path in _modules(app):
            for imported, line in sorted(_imported_apps(path)):
                if LAYERS.index(imported) > level:
                    problems.append(f"{path.relative_to(root)}:{line}: {app} imports {imported}, an app above it")
    return problems


def test_no_app_imports_an_app_above_it():
    problems = layering_violations()
    assert not problems, "app layering broken (see docs/architecture.md):\n" + "\n".join(problems)


def test_every_project_app_has_a_place_in_the_layering():
    ours = {config.name.split(".")[0] for config in apps.get_app_configs() if Path(config.path).parent == ROOT}
    assert ours == set(LAYERS), f"add new apps to LAYERS here and in docs/architecture.md: {ours ^ set(LAYERS)}"


@pytest.mark.parametrize(
    ("app", "source", "broken"),
    [
        ("opsconsole", "from oncall.selectors import on_call_now\n", True),
        ("incidents", "def f():\n    import oncall.selectors\n", True),
        ("notifications", "if TYPE_CHECKING:\n    from incidents.models import Incident\n", True),
        ("oncall", "from incidents.models import Incident\nfrom notifications import services\n", False),
        ("incidents", "from . import models\nfrom opsconsole import audit\n", False),
    ],
)
def test_the_checker_catches_upward_imports(tmp_path, app, source, broken):
    """The checker itself: an upward import anywhere in a module is reported."""
    module = tmp_path / "probe.py"
    module.write_text(source)
    level = LAYERS.index(app)
    upward = [name for name, _ in _imported_apps(module) if LAYERS.index(name) > level]
    assert bool(upward) is broken
