"""Validate every rendered object before it leaves the controller.

Built-in kinds: ``kubernetes-validate`` in strict mode (unknown fields fail).
KubeEdge/K3s kinds: ``jsonschema`` against the real CRD schemas vendored in
``schemas/`` (kubernetes-validate silently passes CRD kinds). A Deployment
embedded in an EdgeApplication template is validated as a Deployment too.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from edgeloop.core.errors import PermanentError

KUBERNETES_VERSION = "1.33.0"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_CRD_FILES = {
    (
        "apps.kubeedge.io/v1alpha1",
        "EdgeApplication",
    ): "apps_v1alpha1_edgeapplication.yaml",
    ("apps.kubeedge.io/v1alpha1", "NodeGroup"): "apps_v1alpha1_nodegroup.yaml",
    (
        "operations.kubeedge.io/v1alpha2",
        "ImagePrePullJob",
    ): "operations_v1alpha2_imageprepulljob.yaml",
    ("helm.cattle.io/v1", "HelmChart"): "helm.cattle.io_helmcharts.yaml",
    ("devices.kubeedge.io/v1beta1", "DeviceModel"): "devices_v1beta1_devicemodel.yaml",
    ("devices.kubeedge.io/v1beta1", "Device"): "devices_v1beta1_device.yaml",
}


class InvalidManifest(PermanentError):
    """A rendered object breaks its schema: a bug in the renderer or its input."""


@cache
def _crd_validator(api_version: str, kind: str) -> Any:
    import jsonschema

    crd = yaml.safe_load(
        (SCHEMA_DIR / _CRD_FILES[(api_version, kind)]).read_text(encoding="utf-8")
    )
    version = api_version.split("/")[1]
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return jsonschema.Draft7Validator(entry["schema"]["openAPIV3Schema"])
    raise KeyError(api_version)


#: Keys whose string values the schemas type-check but never constrain by content.
_FREE_STRINGS = {"name", "namespace", "value", "nodeName"}
_FREE_MAPS = {"labels", "matchLabels", "annotations", "data", "nodeSelector"}
_passed: set[str] = set()


def _shape(node: Any, key: str = "") -> Any:
    """The object with content-free values normalised (same validity, same shape)."""
    if isinstance(node, dict):
        if key in _FREE_MAPS:
            return {"k": "v"} if node else {}
        return {k: _shape(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v, key) for v in node]
    if isinstance(node, str) and key in _FREE_STRINGS:
        return "x"
    if isinstance(node, int) and not isinstance(node, bool) and key == "replicas":
        return 1
    return node


def validate(obj: dict[str, Any]) -> None:
    """Raise :class:`InvalidManifest` naming the object, path and rule.

    Objects of a shape that already passed are not validated again: groups of
    one rollout differ only in names, labels and counts, which no schema
    constrains by content; this keeps 10k-node rollouts to seconds.
    """
    shape = json.dumps(_shape(obj), sort_keys=True)
    if shape in _passed:
        return
    _validate(obj)
    if len(_passed) > 10_000:
        _passed.clear()
    _passed.add(shape)


def _validate(obj: dict[str, Any]) -> None:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    where = f"{key[1]}/{obj.get('metadata', {}).get('name', '?')}"
    if key in _CRD_FILES:
        errors = sorted(
            _crd_validator(*key).iter_errors(obj), key=lambda e: list(e.absolute_path)
        )
        if errors:
            path = ".".join(str(p) for p in errors[0].absolute_path) or "<root>"
            raise InvalidManifest(f"{where}: {path}: {errors[0].message}")
        if key[1] == "EdgeApplication":
            for manifest in obj["spec"]["workloadTemplate"]["manifests"]:
                _validate(manifest)
        return
    try:
        validator = _builtin_validator(*key)
    except FileNotFoundError as exc:
        raise InvalidManifest(f"{where}: no schema for {key[0]} {key[1]}") from exc
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        path = ".".join(str(p) for p in errors[0].absolute_path) or "<root>"
        raise InvalidManifest(f"{where}: {path}: {errors[0].message}")


@cache
def _builtin_validator(api_version: str, kind: str) -> Any:
    """The strict schema of a built-in kind, built once.

    Same schema files and reference registry as ``kubernetes_validate.validate``,
    which rebuilds them on every call (~25 ms per object); caching makes
    validating a 10k-node rollout take seconds instead of minutes.
    """
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    wanted = utils.major_minor(KUBERNETES_VERSION)
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    schema = utils.schema_contents(
        f"{folder}/{kind.lower()}-{api}.json", KUBERNETES_VERSION
    )
    definitions = utils.schema_contents(
        f"{folder}/_definitions.json", KUBERNETES_VERSION
    )
    registry = Resource.from_contents(definitions) @ (
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_all(objects: list[dict[str, Any]]) -> None:
    """Validate a whole wave; nothing is applied unless all of it passes."""
    for obj in objects:
        validate(obj)


def main(argv: list[str]) -> int:
    """``python -m edgeloop.rollout.validate FILE...``: validate YAML streams.

    Every object is checked (CRD definitions included, with kubernetes-validate
    in strict mode) and every invalid one reported before the exit code says so.
    """
    failed = checked = 0
    for name in argv:
        for obj in yaml.safe_load_all(Path(name).read_text(encoding="utf-8")):
            if not obj:
                continue
            checked += 1
            try:
                validate(obj)
            except InvalidManifest as exc:
                print(f"{name}: {exc}")
                failed += 1
    print(f"{checked} object(s) in {len(argv)} file(s) checked, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
