"""deploy/: the Prometheus alert rules pass promtool, the Grafana dashboard is well formed, and every metric
either of them queries is one the API exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from holocrm_api import ServingSettings, create_app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "holocrm-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "holocrm-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "holocrm-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is absent: install Debian's `prometheus` package (apt-get install -y prometheus)",
)
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge", "gauge", "text", "heatmap"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, label names, durations or strings)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        if match.group(2) is None and match.group(1) not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def test_metric_names_reads_only_metrics():
    expr = 'sum by (le, handler) (rate(http_x_bucket{status="5xx"}[5m])) / clamp_min(sum(y_total), 1e-9) > 2 * 86400'
    assert metric_names(expr) == {"http_x_bucket", "y_total"}


@pytest.fixture
def exported(home) -> set[str]:
    """Every family and sample name the API's /metrics exports once it answered a score and an action."""
    settings = ServingSettings.from_env(home=home, reload_interval_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.get("/api/contacts/C1/score")
        client.get("/api/contacts/C1/recommendation")
        client.get("/api/contacts/NOPE/score")
        text = client.get("/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def _is_exported(name: str, exported: set[str]) -> bool:
    if name in exported:
        return True
    base = re.sub(r"_(bucket|count|sum|total|created)$", "", name)
    return base in exported


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_every_metric_the_dashboard_and_the_alerts_query_is_exported(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {name for expr in _dashboard_exprs(dashboard) + _rule_exprs() for name in metric_names(expr)}
    assert len(queried) >= 12
    missing = sorted(name for name in queried if not _is_exported(name, exported))
    assert missing == [], f"queried but not exported by the API: {missing}"


def test_the_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
        assert key in dashboard, key
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert {"API", "Models", "Drift", "Decisions and experiments", "Freshness"} <= titles
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y"))
        assert grid["x"] + grid["w"] <= 24 and grid["h"] >= 1
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        assert all(t["expr"].strip() and metric_names(t["expr"]) for t in panel["targets"]), panel["title"]
    # no two panels overlap
    cells = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area


def test_alert_rules_cover_what_the_issue_asks():
    rules = yaml.safe_load(RULES.read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    expected = {"HoloCRMHigh5xxRate", "HoloCRMSlowP95", "HoloCRMDriftBlock", "HoloCRMChampionDecayed"}
    assert expected | {"HoloCRMAssetStale"} <= names
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("page", "ticket")


@needs_promtool
def test_promtool_checks_the_rules():
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_fire_each_alert_on_its_series():
    result = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
