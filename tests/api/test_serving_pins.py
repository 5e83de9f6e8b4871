"""The API's snapshot pins the LanceDB versions it serves: a pipeline's merges and cleanups do not remove
them; once the snapshot is gone its pins go and the next cleanup frees the old versions."""

from __future__ import annotations

import gc

from holocrm_api import ServingSettings
from holocrm_api.loader import ArtifactLoader
from holocrm_core import lance_versions
from tests.core.test_lance_versions import _merge_rounds


def test_a_served_snapshot_keeps_its_index_versions(tmp_path, monkeypatch):
    from holocrm_core.store import SimilarityStore

    monkeypatch.setenv("HOLOCRM_LANCEDB_RETENTION_S", "0")  # remove every unpinned version at once
    monkeypatch.setattr(lance_versions, "MARGIN_S", 0.0)
    settings = ServingSettings(home=tmp_path, load_models=False, warm_query_embedder=False)
    uri = settings.resolved_lancedb_uri()
    writer = SimilarityStore(uri)
    _merge_rounds(writer, 1)
    loader = ArtifactLoader(settings)
    store, versions = loader._open_store({})
    assert store is not None and set(writer.table("contact").tags.list())
    _merge_rounds(writer, 2, start=1)  # the pipeline runs again, twice, each merge cleaning up
    assert store.table("contact").version == versions["contact"] < writer.table("contact").version
    assert "round 0" in store.texts("contact", ["C0002"])["C0002"]
    assert store.search("pipeline tooling", entity_types=["contact"], mode="fulltext", limit=3)
    del store
    gc.collect()  # the snapshot is gone: its pins are dropped
    assert not writer.table("contact").tags.list()
    assert writer.compact()["contact"]["versions_after"] == 1
