"""Step 1: ingest and validate the dataset against its schema."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from edgeloop_components.images import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validate_data(
    data_uri: str,
    schema_path: str,
    validated: Output[Dataset],
    labels_uri: str = "",
) -> str:
    """Validate a readings table against its dataset schema and label it.

    Args:
        data_uri: dataset directory (with schema.yaml) or readings file: a path,
            file://, s3:// or http(s):// URI (remote data is staged, then validated).
        schema_path: schema file (path or URI); empty to use schema.yaml beside the data.
        labels_uri: failure log (path or URI) used instead of the schema's label.path.
        validated: labelled, sorted readings plus the schema.

    Returns:
        JSON: rows, entities, positive share, data hash, dataset URI.
    """
    from pathlib import Path

    from edgeloop_components import tasks

    info = tasks.ingest_validate(
        data_uri, schema_path, Path(validated.path), labels_uri
    )
    validated.metadata.update(info)
    return tasks.dumps(info)
