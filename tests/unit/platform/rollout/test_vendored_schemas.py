"""The vendored CRD schemas are the truth: check what the repository itself holds.

`SOURCES.md` beside the schemas records where each came from and its sha256;
nothing outside the repository is read (a user's clone has nothing beside it).
"""

import hashlib
import re

import jsonschema
import yaml

from edgeloop.rollout import validate

SOURCES = validate.SCHEMA_DIR / "SOURCES.md"
ROW = re.compile(
    r"^\| (?P<file>[\w.]+\.yaml) \|.*\| (?P<blob>[0-9a-f]{40}) \| (?P<sha>[0-9a-f]{64}) \|$"
)


def _recorded() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows[match["file"]] = (match["blob"], match["sha"])
    return rows


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_every_vendored_schema_is_recorded_with_its_source():
    on_disk = {p.name for p in validate.SCHEMA_DIR.glob("*.yaml")}
    assert on_disk, "no vendored schemas"
    assert set(_recorded()) == on_disk


def test_vendored_schemas_have_their_recorded_hashes():
    for name, (blob, sha) in _recorded().items():
        data = (validate.SCHEMA_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha, name
        # the upstream git blob id ties the copy to the upstream file
        assert _git_blob(data) == blob, name


def test_vendored_schemas_parse_as_crds_with_usable_json_schemas():
    for name in _recorded():
        doc = yaml.safe_load((validate.SCHEMA_DIR / name).read_text(encoding="utf-8"))
        assert doc["kind"] == "CustomResourceDefinition", name
        versions = doc["spec"]["versions"]
        assert versions, name
        for version in versions:
            schema = version["schema"]["openAPIV3Schema"]
            jsonschema.Draft7Validator.check_schema(schema)


def test_the_renderer_knows_every_vendored_schema():
    # every schema the renderers validate against is vendored and recorded
    assert set(validate._CRD_FILES.values()) <= set(_recorded())
