"""NLQ assets: the question vocabulary (field values, names, owners, synonyms), rebuilt after each ingest."""

import json

import dagster as dg
import polars as pl

from holocrm_core import schema
from pipelines.io_manager import optional_ins
from pipelines.resources import ExportResource, StorageResource

GROUP = "nlq"


@dg.asset(
    group_name=GROUP,
    ins=optional_ins(schema.RECORD_STAGED_TABLES),
    description="Words a question may use, learned from the staged tables; written to "
    "warehouse/nlq_vocabulary.json for `holocrm ask` and the API, with the semantic layer (metrics, "
    "dimensions, entity words; a mapping's overrides applied) in warehouse/semantic_layer.json.",
)
def nlq_vocabulary(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    export: ExportResource,
    **staged: pl.DataFrame | None,
) -> dg.MaterializeResult:
    """The mapping of the export (the one export resource) may override the semantic layer (`semantic:`)."""
    from holocrm_core.metrics import SemanticLayer
    from holocrm_core.nlq import VOCABULARY_FILE, NLQContext
    from holocrm_core.nlq.answer import NLQ_ENTITIES, write_semantic_layer

    warehouse = storage.warehouse()  # a folder or object storage: both written as warehouse documents
    # always rebuilt from the staged tables (never loaded from the previous artifact): this asset is the artifact
    tables = {e: staged[f"staged_{e}"] for e in NLQ_ENTITIES if staged.get(f"staged_{e}") is not None}
    layer = SemanticLayer.load(export.mapping or None)
    write_semantic_layer(warehouse, layer)
    ctx = NLQContext(tables, semantic=layer)
    path = ctx.write_vocabulary(warehouse)
    vocab = ctx.vocab
    summary = {f"{e}.{c}": len(v) for (e, c), v in vocab.categories.items()}
    context.log.info(f"vocabulary: {len(vocab.phrases)} phrases -> {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(path),
            "file": VOCABULARY_FILE,
            "phrases": len(vocab.phrases),
            "values_per_field": dg.MetadataValue.json(summary),
            "company_names": len(vocab.company_names),
            "contact_names": len(vocab.contact_names),
            "owners": len(vocab.owners),
            "data_ends": vocab.data_end.isoformat() if vocab.data_end else "",
            "size_bands_small_to_large": ", ".join(vocab.size_bands),
            "semantic_layer": layer.source,
            "metrics": ", ".join(layer.metrics),
            "bytes": len(json.dumps(vocab.to_artifact())),
        }
    )
