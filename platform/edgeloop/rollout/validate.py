"""Validate every rendered object before it leaves the controller.

Built-in kinds: ``kubernetes-validate`` in strict mode (unknown fields fail).
KubeEdge/K3s kinds: ``jsonschema`` against the real CRD schemas vendored in
``schemas/`` (kubernetes-validate silently passes CRD kinds). A Deployment
embedded in an EdgeApplication template is validated as a Deployment too.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from edgeloop.errors import PermanentError

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


def validate(obj: dict[str, Any]) -> None:
    """Raise :class:`InvalidManifest` naming the object, path and rule."""
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
                validate(manifest)
        return
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "<root>"
        raise InvalidManifest(f"{where}: {path}: {exc.message}") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise InvalidManifest(f"{where}: no schema for {key[0]} {key[1]}") from exc


def validate_all(objects: list[dict[str, Any]]) -> None:
    """Validate a whole wave; nothing is applied unless all of it passes."""
    for obj in objects:
        validate(obj)
