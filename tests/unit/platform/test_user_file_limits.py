"""User files are size-capped before parsing; JSON is parsed as JSON.

A 20 MiB fleet file took 90 s and 1.2 GB with pure-Python YAML.
"""

import json

import pytest

from edgeloop.core.errors import UsageError
from edgeloop.rollout.fleet import FileFleet
from edgeloop_components.dataset import load_schema
from edgeloop_components.errors import SchemaError


def test_an_oversized_fleet_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "fleet.yaml"
    with path.open("w") as out:
        out.write("nodes:\n")
        line = "  - {node: gw-000000, active_version: '1'}\n"
        out.write(line * (20 * 2**20 // len(line)))
    with pytest.raises(UsageError, match="larger than the 16777216 bytes a fleet"):
        FileFleet(path)


def test_a_json_fleet_is_read_as_json(tmp_path):
    nodes = [{"node": f"gw-{i:05d}", "active_version": "1"} for i in range(10_000)]
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"nodes": nodes}))
    assert len(FileFleet(path).observe()) == 10_000
    path.write_text('{"nodes": [}')
    with pytest.raises(
        UsageError, match=r"fleet.json: not valid JSON \(Expecting value"
    ):
        FileFleet(path)


def test_an_oversized_schema_is_refused(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text("# " + "x" * (2 * 2**20) + "\n")
    with pytest.raises(SchemaError, match="larger than 1048576 bytes"):
        load_schema(path)
