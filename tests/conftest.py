"""Test session settings: offline models, and all state (HOLOCRM_HOME, MLflow) in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="holocrm-tests-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ["HOLOCRM_HOME"] = str(_SESSION_ROOT / "home")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_ROOT / 'mlflow.db'}"

SHARED_DATA = Path(
    os.environ.get("HOLOCRM_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
).resolve()


# ---------------------------------------------------------------------------------------- the two lanes
# `./dev test` runs what is not marked slow; `./dev test --all` (CI) runs both lanes. Besides the modules that
# mark themselves, these heavy tests go to the slow lane, listed here so the lanes are decided in one place.
# Each took 15 s or more in the fast lane (31 min at load average ~21 on 2 cores; 4 s or more on a quiet
# machine): model training already covered end to end by the sample graph, server processes killed mid-way,
# retrieval-quality comparisons. A module path takes the whole module. Never a test whose module-mates read
# what it leaves (tests/core/test_registry.py's champion, say): they would fail alone in the fast lane.
SLOW = (
    "tests/pipelines/test_attachments_assets.py",
    "tests/pipelines/test_runner.py::test_a_killed_run_is_marked_failed_and_a_live_one_is_left",
    "tests/core/test_scoring_notes.py::test_single_record_path_matches_the_batch_path",
    "tests/core/test_scoring_boosting.py::test_blend_weighs_neural_and_trees_on_recent_rows_and_explains",
    "tests/core/test_scoring.py::test_more_closed_outcomes_lower_held_out_log_loss",
    "tests/core/test_scoring_guards.py::test_the_won_dated_by_win_date_export_shape_does_not_leak_through_lead_age",
    "tests/core/test_scoring_guards.py::test_a_planted_time_to_decision_field_is_caught_and_excluded",
    "tests/core/test_attachments_search.py::test_top3_hybrid_retrieval_per_text_kind_beats_the_bm25_baseline",
    "tests/api/test_serving_server.py::test_sigkill_mid_stream_loses_no_acknowledged_outcome",
)


def _in_slow_lane(nodeid: str) -> bool:
    return any(
        nodeid == entry or nodeid.startswith(entry + ("::" if entry.endswith(".py") else "["))
        for entry in SLOW
    )


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _in_slow_lane(item.nodeid):
            item.add_marker(pytest.mark.slow)
    yield  # -m deselects here
    groups_file = getattr(config, "workerinput", {}).get(_GROUPS_KEY)
    if groups_file:  # an xdist worker: the order the scheduler hands out, and each module's group
        groups = _xdist_groups(items)
        items.sort(key=_group_rank(items, groups))  # stable: a module's tests stay together, in order
        tmp = Path(groups_file).with_suffix(f".{os.getpid()}")
        tmp.write_text(json.dumps(groups))
        tmp.replace(groups_file)


# ---------------------------------------------------------------------------------------- two workers
# `./dev test` runs each lane on two pytest-xdist workers with `--dist loadscope`, scheduled here: a group of
# tests runs whole on one worker. A test's group is its module, so a module's fixtures are built once; modules
# that share an expensive session fixture (the sample graph, one server) are one group, so it is not built on
# both workers. Groups that share a fixture go first (the longest), then the others, most tests first.
# (xdist's own `--dist loadgroup` does not group under pytest 9.2: pytest-dev/pytest-xdist#1386.)
SHARED_SESSION_FIXTURES = ("sample_graph", "pipeline_export", "postgres", "redis_broker", "s3_endpoint")
_GROUPS_KEY = "holocrm_xdist_groups"


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _xdist_groups(items) -> dict[str, str]:
    """Each module's group: its own path, or the name of a shared session fixture that joins it to others."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for item in items:
        for name in SHARED_SESSION_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                module, shared = find(_module_of(item.nodeid)), find(name)
                if module != shared:
                    parent[module] = shared  # the fixture's name stays the root: the group is named after it
    return {_module_of(item.nodeid): find(_module_of(item.nodeid)) for item in items}


def _group_rank(items, groups: dict[str, str]):
    """Sort key of a test: its group's place, the groups sharing a fixture first, then the most tests first."""
    size: dict[str, int] = {}
    for item in items:
        group = groups[_module_of(item.nodeid)]
        size[group] = size.get(group, 0) + 1
    return lambda item: (
        groups[_module_of(item.nodeid)] not in SHARED_SESSION_FIXTURES,
        -size[groups[_module_of(item.nodeid)]],
        groups[_module_of(item.nodeid)],
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist, in the controller: each worker writes the groups where the scheduler reads them."""
    node.workerinput[_GROUPS_KEY] = str(_SESSION_ROOT / "xdist-groups.json")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                self.groups = json.loads((_SESSION_ROOT / "xdist-groups.json").read_text())
            module = _module_of(nodeid)
            return self.groups.get(module, module)

    config.option.loadscopereorder = False  # the workers' collection order is the order (_group_rank)
    return GroupScheduling(config, log)


# ---------------------------------------------------------------------------------------- the sample graph

SAMPLE_CONTACTS, SAMPLE_SEED = 150, 3
# The outreach policy's PPO budget in the sample graph: enough to train, gate and register a policy (what the
# tests read), not the 300k steps a real run trains; the PPO figures come from tests/pipelines/test_rl_assets.
SAMPLE_PPO = {
    "total_timesteps": 16_384,
    "n_envs": 128,
    "history_episodes": 1000,
    "simulator_members": 2,
    "eval_episodes": 300,
    "time_limit_s": 60.0,
}


@dataclass(frozen=True)
class SampleGraph:
    """The whole asset graph materialized once by `holocrm run` on a small generated export.

    Read it, never write to it: a test that changes state works on ``copy(tmp_path)``.
    """

    root: Path
    home: Path
    export: Path
    truth: Path
    mlflow_uri: str
    output: str  # what `holocrm run` printed

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to see this graph (HOLOCRM_HOME, its MLflow store, the torch backend)."""
        return {
            "HOLOCRM_HOME": str(self.home),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "HOLOCRM_EMBED_BACKEND": "torch",
        }

    def copy(self, target: Path) -> SampleGraph:
        """A private copy of the home (warehouse, LanceDB, Dagster runs); the MLflow store is shared."""
        shutil.copytree(self.home, target / "home", symlinks=True)
        return SampleGraph(self.root, target / "home", self.export, self.truth, self.mlflow_uri, self.output)


@pytest.fixture(scope="session")
def sample_graph(tmp_path_factory) -> SampleGraph:
    """`holocrm run` on the sample export, the PPO budget cut to ``SAMPLE_PPO`` (the real runner, given it as
    the outreach policy's run config)."""
    import functools

    from typer.testing import CliRunner

    from holocrm_cli import app
    from holocrm_core.synth import generate_export
    from pipelines import runner

    root = tmp_path_factory.mktemp("sample-graph")
    export = root / "home" / "landing" / "batch-1"
    generate_export(export, n_contacts=SAMPLE_CONTACTS, seed=SAMPLE_SEED, truth_dir=root / "truth")
    graph = SampleGraph(root, root / "home", export, root / "truth", f"sqlite:///{root / 'mlflow.db'}", "")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in graph.env.items():
            patch.setenv(key, value)
        patch.setattr(
            runner, "run_all", functools.partial(runner.run_all, op_config={"outreach_policy": SAMPLE_PPO})
        )
        result = CliRunner().invoke(app, ["run", "--export", str(export)])
    assert result.exit_code == 0, result.output
    return SampleGraph(graph.root, graph.home, export, graph.truth, graph.mlflow_uri, result.output)


@pytest.fixture(scope="session")
def pipeline_export(tmp_path_factory) -> Path:
    """A 2,500-contact export (seed 3) generated and ingested once: the scoring and decisions pipeline tests
    each train on a private copy of its home (``tests.support.pipelines.copied_home``)."""
    from tests.support.pipelines import ingested_home

    root = tmp_path_factory.mktemp("pipeline-export")
    ingested_home(root, n_contacts=2500, seed=3)
    return root


@pytest.fixture()
def sample_env(sample_graph, monkeypatch) -> SampleGraph:
    """The sample graph, with this test's environment pointed at it (HOLOCRM_HOME, MLflow store)."""
    for key, value in sample_graph.env.items():
        monkeypatch.setenv(key, value)
    return sample_graph
