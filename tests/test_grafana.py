"""deploy/grafana/opsconsole.json: a dashboard Grafana can import, whose
every query is valid PromQL (promtool parses it as a recording rule) and
selects only metrics that /metrics exports, and which shows every metric an
alert rule watches."""

import json

import pytest
import yaml

from tests.test_deploy import PROM_DIR, ROOT, _alerts, _promtool, exported_metric_names, metric_names_in

DASHBOARD = ROOT / "deploy" / "grafana" / "opsconsole.json"
PANEL_TYPES = {"stat", "timeseries", "table", "gauge", "bargauge"}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _exprs(dashboard: dict) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_has_what_grafana_needs_to_import_it():
    dashboard = _dashboard()
    assert dashboard["uid"] == "opsconsole-self" and dashboard["title"] == "Ops Console"
    assert dashboard["schemaVersion"] >= 36
    [variable] = dashboard["templating"]["list"]
    assert variable == variable | {"name": "datasource", "type": "datasource", "query": "prometheus"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 12
    occupied = set()
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["title"] and panel["targets"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "hwxy") and grid["x"] + grid["w"] <= 24
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses each expression, as a recording rule of a generated file."""
    rules = [{"record": f"grafana:panel_{i}", "expr": expr} for i, (_title, expr) in enumerate(_exprs(_dashboard()))]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "x", "expr": "sum(rate(x[5m])"}]}]})
    )
    assert _promtool("check", "rules", str(broken)).returncode != 0  # the check does catch a typo


@pytest.mark.django_db
def test_queries_select_only_exported_metrics_and_cover_every_alert(client):
    exported = exported_metric_names(client)
    shown = set()
    for title, expr in _exprs(_dashboard()):
        used = metric_names_in(expr)
        assert used, f"{title}: no metric in {expr}"
        assert used <= exported, f"{title} queries metrics /metrics does not export: {used - exported}"
        assert 'job="opsconsole"' in expr, f"{title}: every selector names the console's job"
        shown |= used
    watched = {name for rule in _alerts().values() for name in metric_names_in(rule["expr"])}
    assert watched <= shown, f"alerted on but not on the dashboard: {watched - shown}"
    assert (PROM_DIR / "rules.yml").exists()
