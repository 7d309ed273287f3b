"""Step 1: ingest and validate the dataset against its schema."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validate_data(data_path: str, schema_path: str, validated: Output[Dataset]) -> str:
    """Validate a readings table against its dataset schema and label it.

    Args:
        data_path: dataset directory (with schema.yaml) or readings file.
        schema_path: schema file; empty to use schema.yaml beside the data.
        validated: labelled, sorted readings plus the schema.

    Returns:
        JSON: rows, entities, positive share, data hash, dataset URI.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    info = tasks.ingest_validate(data_path, schema_path, Path(validated.path))
    validated.metadata.update(info)
    return tasks.dumps(info)
