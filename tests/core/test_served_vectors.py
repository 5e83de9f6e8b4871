"""The server's vectors written once and memory-mapped (EntityVectors.save / open, the store's vector_cache)
answer exactly what the vectors read from LanceDB answer; ids as byte arrays answer as the dict did."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from holocrm_core.id_index import IdIndex, IdList, encodable, id_bytes
from holocrm_core.store import EntityVectors, SimilarityStore
from holocrm_core.text import FILTER_COLUMNS, entity_documents


def test_id_index_answers_as_the_dict_it_replaces():
    ids = ["C10", "C2", "é-ü", "C2", "", "C100", "B", "C10"]  # repeats, unicode, an empty id
    values = id_bytes(ids)
    index, listed = IdIndex.build(values), IdList(values)
    expected = {entity_id: i for i, entity_id in enumerate(ids)}
    for key in [*ids, "C1", "C1000", "c10", "Z", "C10\x00", 7, None, "a" * 50]:
        assert index.get(key) == expected.get(key)
        assert (key in index) == (key in expected)
    assert len(index) == len(expected) and sorted(index) == sorted(expected)
    assert [listed[i] for i in range(len(ids))] == ids == list(listed) == listed[:]
    with pytest.raises(KeyError):
        index["nope"]
    assert not encodable(["a", None]) and not encodable(["a\x00"]) and encodable(["a", "ü"])


def _vectors(n: int, seed: int = 0) -> EntityVectors:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, 384))
    vectors = centres[rng.integers(0, 40, n)] + 0.7 * rng.normal(size=(n, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    coarse = vectors[:, :96] / np.linalg.norm(vectors[:, :96], axis=1, keepdims=True)
    owners = [f"owner {i % 7}" for i in range(n)]
    names = [f"name {i}" for i in range(n)]  # as many values as rows: held as byte arrays
    codes, categories = {}, {}
    for column in FILTER_COLUMNS:
        values = names if column == "name" else owners if column == "owner" else [None] * n
        distinct = sorted({v for v in values if v is not None})
        at = {v: i for i, v in enumerate(distinct)}
        codes[column] = np.array([at.get(v, -1) for v in values], dtype=np.int32)
        categories[column] = distinct
    return EntityVectors([f"P{i}" for i in range(n)], vectors, coarse, codes, categories)


def test_saved_and_mapped_vectors_answer_exactly_as_the_built_ones(tmp_path):
    n = 60_000  # above the inverted-file threshold: the faiss index is written and read back
    built = _vectors(n)
    assert "inverted file" in built.index.kind
    built.save(tmp_path / "saved")
    opened = EntityVectors.open(tmp_path / "saved")
    assert isinstance(opened.vectors, np.memmap) and isinstance(opened.coarse, np.memmap)
    assert opened.index.kind == built.index.kind and opened.index.nprobe == built.index.nprobe
    rng = np.random.default_rng(1)
    for position in rng.choice(n, 40, replace=False).tolist():
        for filters in (None, {"owner": "owner 3"}, {"name": ["name 5", f"name {position}"]}):
            mask_built, mask_opened = built.mask(filters), opened.mask(filters)
            assert (mask_built is None and mask_opened is None) or np.array_equal(mask_built, mask_opened)
            args = (built.vector(position), built.coarse[position], 10)
            found_b, sim_b = built.nearest(*args, mask=mask_built, exclude=[position])
            found_o, sim_o = opened.nearest(*args, mask=mask_opened, exclude=[position])
            assert found_b.tolist() == found_o.tolist() and np.array_equal(sim_b, sim_o)
            assert built.rows("contact", found_b, sim_b) == opened.rows("contact", found_o, sim_o)
    assert opened.position_of("P123") == 123 and opened.ids[123] == "P123"


def _index(uri: str, n: int = 60) -> None:
    contacts = pl.DataFrame(
        {
            "contact_id": [f"C{i}" for i in range(n)],
            "full_name": [f"Person {i}" for i in range(n)],
            "title": ["CTO" if i % 2 else "Buyer" for i in range(n)],
            "owner": ["Ann" if i % 3 else "Bob" for i in range(n)],
        }
    )
    docs = entity_documents({"contacts": contacts})
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(docs), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    SimilarityStore(uri).sync(docs, vectors)


def test_the_store_maps_a_pinned_version_once_and_answers_as_without_the_cache(tmp_path):
    uri = str(tmp_path / "lancedb")
    _index(uri)
    versions = SimilarityStore(uri).versions()
    plain = SimilarityStore(uri, version=versions)
    cache = tmp_path / "cache"
    first = SimilarityStore(uri, version=versions, vector_cache=cache)
    second = SimilarityStore(uri, version=versions, vector_cache=cache)  # another process: maps the files
    saved = sorted(p.name for p in cache.glob("contact-v*"))
    assert len(saved) == 0  # nothing saved before the first read
    for contact in ("C1", "C7", "C30"):
        for filters in (None, {"owner": "Ann"}):
            expected = plain.similar("contact", contact, limit=5, filters=filters)
            assert first.similar("contact", contact, limit=5, filters=filters) == expected
            assert second.similar("contact", contact, limit=5, filters=filters) == expected
    saved = sorted(p.name for p in cache.glob("contact-v*"))
    assert len(saved) == 1 and isinstance(second.entity_vectors("contact").vectors, np.memmap)
    _index(uri, n=61)  # a new version: saved beside, the old folder removed
    newer = SimilarityStore(uri, version=SimilarityStore(uri).versions(), vector_cache=cache)
    assert len(newer.entity_vectors("contact")) == 61
    assert [p.name for p in cache.glob("contact-v*")] != saved and len(list(cache.glob("contact-v*"))) == 1


def test_every_label_of_a_type_is_what_the_per_id_labels_say():
    from holocrm_core.services.labels import RecordLabels

    contacts = pl.DataFrame(
        {
            "contact_id": ["C1", "C2", "C3", "C2", "C4"],  # C2 twice: the last row is the one kept
            "full_name": ["Ann Lee", None, "Bo  Chan", "Cy Dee", None],
            "first_name": [None, "Old", None, None, "Di"],
            "last_name": [None, None, None, None, "Eve"],
            "title": ["CTO", "VP", None, "CEO", "Buyer"],
            "company_name": ["Acme", None, None, None, None],
            "company_id": ["K1", "K2", "K9", "K2", None],
        }
    )
    companies = pl.DataFrame({"company_id": ["K1", "K2"], "name": ["Acme", "Beta"], "industry": ["x", "y"]})
    deals = pl.DataFrame(
        {
            "deal_id": ["D1", "D2"],
            "title": ["Big", None],
            "stage": ["won", "lost"],
            "company_id": ["K2", "K1"],
        }
    )
    tables = {"staged_contacts": contacts, "staged_companies": companies, "staged_deals": deals}
    served, oneoff = RecordLabels(tables, precompute=True), RecordLabels(tables)
    for entity_type, ids in (("contact", ["C1", "C2", "C3", "C4", "C5"]), ("deal", ["D1", "D2", "D3"])):
        every = served._every(entity_type)
        assert dict(every.items()) == oneoff._labels(entity_type, None)
        assert served.for_ids(entity_type, ids) == oneoff.for_ids(entity_type, ids)
    assert served.for_ids("contact", ["C2"]) == {"C2": "Cy Dee - CEO at Beta"}


def test_contact_and_deal_rows_answer_as_the_dicts_they_replace():
    from holocrm_api.loader import FrameRows

    frame = pl.DataFrame(
        {"contact_id": ["C1", "C2", "C1", "C3"], "stage": ["a", None, "c", "d"], "n": [1, 2, 3, None]}
    )
    rows = FrameRows(frame, "contact_id")
    expected = {row.pop("contact_id"): row for row in frame.to_dicts()}
    assert dict(rows.items()) == expected and len(rows) == 3
    assert rows.get("C1") == {"stage": "c", "n": 3} and rows.get("nope") is None and "C3" in rows


def test_activities_get_their_contacts_company_as_the_join_gave_it():
    from holocrm_core.nlq.answer import _fill_activity_companies

    acts = pl.DataFrame(
        {
            "activity_id": ["A1", "A2", "A3", "A4", "A5"],
            "contact_id": ["C2", "C1", None, "C9", "C1"],
            "company_id": [None, "K7", None, None, None],
            "subject": ["a", "b", "c", "d", "e"],
        }
    )
    contacts = pl.DataFrame({"contact_id": ["C1", "C2", "C1"], "company_id": ["K1", "K2", "K3"]})
    link = contacts.select("contact_id", pl.col("company_id").alias("_contact_company")).unique("contact_id")
    joined = (  # what it did before: the whole table joined
        acts.join(link, on="contact_id", how="left")
        .with_columns(pl.coalesce("company_id", "_contact_company").alias("company_id"))
        .drop("_contact_company")
    )
    filled = _fill_activity_companies(acts, contacts)
    assert filled.equals(joined) and filled.columns == acts.columns
    assert filled["company_id"].to_list()[:4] == ["K2", "K7", None, None]
