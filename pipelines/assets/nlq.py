"""NLQ assets: the question vocabulary (field values, names, owners, synonyms), rebuilt after each ingest."""

import dagster as dg

from holocrm_core import schema
from pipelines.resources import StorageResource

GROUP = "nlq"


@dg.asset(
    group_name=GROUP,
    deps=list(schema.RECORD_STAGED_TABLES),
    description="Words a question may use, learned from the staged tables; written to "
    "warehouse/nlq_vocabulary.json for `holocrm ask` and the API.",
)
def nlq_vocabulary(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    from holocrm_core.nlq import VOCABULARY_FILE, NLQContext
    from holocrm_core.nlq.answer import NLQ_ENTITIES

    warehouse = storage.warehouse()
    # always rebuilt from the staged tables (never loaded from the previous artifact): this asset is the artifact
    tables = {e: warehouse.read(f"staged_{e}") for e in NLQ_ENTITIES if warehouse.exists(f"staged_{e}")}
    ctx = NLQContext(tables)
    path = ctx.write_vocabulary(warehouse.root)
    vocab = ctx.vocab
    summary = {f"{e}.{c}": len(v) for (e, c), v in vocab.categories.items()}
    context.log.info(f"vocabulary: {len(vocab.phrases)} phrases -> {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "file": VOCABULARY_FILE,
            "phrases": len(vocab.phrases),
            "values_per_field": dg.MetadataValue.json(summary),
            "company_names": len(vocab.company_names),
            "contact_names": len(vocab.contact_names),
            "owners": len(vocab.owners),
            "data_ends": vocab.data_end.isoformat() if vocab.data_end else "",
            "size_bands_small_to_large": ", ".join(vocab.size_bands),
            "bytes": path.stat().st_size,
        }
    )
