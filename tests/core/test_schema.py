"""The entity registry: every name an entity goes by comes from one entry."""

import pytest

from holocrm_core import schema


@pytest.mark.parametrize("name", ["activity", "activities", "Activities", " activity "])
def test_entity_found_by_singular_or_plural(name):
    record = schema.entity(name)
    assert (record.name, record.plural, record.id_column) == ("activity", "activities", "activity_id")
    assert (record.staged_asset, record.raw_asset, record.table) == ("staged_activities", "raw_activities", "activities")


def test_unknown_entity_error_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        schema.entity("activitie")  # what "activities".rstrip("s") gives
    message = str(err.value)
    assert "activitie" in message
    for record in schema.REGISTRY:
        assert record.name in message and record.plural in message


def test_derived_tables_agree_with_the_registry():
    assert list(schema.ENTITIES) == schema.STAGING_ORDER == [e.plural for e in schema.REGISTRY]
    for record in schema.REGISTRY:
        assert record.id_column in record.columns
        assert schema.ID_COLUMN[record.plural] == record.id_column
        assert schema.REQUIRED[record.plural][0] == record.id_column
    assert schema.ATTACHMENT not in schema.DOCUMENT_ENTITIES
    with pytest.raises(AttributeError):
        schema.CONTACT.name = "lead"  # frozen
