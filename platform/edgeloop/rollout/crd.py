"""Generate the EdgeRollout CRD from the pydantic models (never edited by hand).

``python -m edgeloop.rollout.crd`` rewrites ``manifests/base/crds/``; a test
fails when the file and the models disagree. The pydantic JSON schema is turned
into a Kubernetes *structural* schema: ``$ref`` inlined, ``Optional`` as
``nullable``, no ``title``, no ``additionalProperties: false`` next to
``properties`` (which structural schemas forbid).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edgeloop.rollout import spec
from edgeloop.rollout.render.yaml import dump_all

CRD_PATH = Path("manifests/base/crds/edgeloop.io_edgerollouts.yaml")
_DROP = {"title", "$defs", "discriminator"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            single: dict[str, Any] = _structural({**options[0], **rest}, defs)
            if nullable:
                single["nullable"] = True
            return single
        return {**_structural(rest, defs), "x-kubernetes-preserve-unknown-fields": True}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
            out.setdefault("type", "string")
            continue
        if key == "format" and value not in {
            "date-time",
            "int32",
            "int64",
            "float",
            "double",
        }:
            continue
        out[key] = _structural(value, defs)
    if "properties" in out and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if "properties" in out:
        out.setdefault("type", "object")
    if "default" in out and out.get("default") is None:
        del out["default"]
    return out


def schema_for(model: type[Any]) -> dict[str, Any]:
    """A model's structural openAPIV3 schema."""
    raw = model.model_json_schema()
    return dict(_structural(raw, raw.get("$defs", {})))


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object.

    Long: one CustomResourceDefinition literal; split up, its fields would no longer read as the YAML it renders to.
    """
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{spec.PLURAL}.{spec.GROUP}"},
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "plural": spec.PLURAL,
                "singular": "edgerollout",
                "listKind": "EdgeRolloutList",
                "shortNames": ["erl"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Model",
                            "type": "string",
                            "jsonPath": ".spec.model.name",
                        },
                        {
                            "name": "Version",
                            "type": "string",
                            "jsonPath": ".status.modelVersion",
                        },
                        {"name": "Wave", "type": "string", "jsonPath": ".status.wave"},
                        {
                            "name": "Phase",
                            "type": "string",
                            "jsonPath": ".status.phase",
                        },
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A gated, wave-by-wave rollout of a registered model to edge nodes.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": schema_for(spec.EdgeRolloutSpec),
                                "status": schema_for(spec.EdgeRolloutStatus),
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    """The CRD file's text."""
    return (
        "# Generated by `python -m edgeloop.rollout.crd` from edgeloop.rollout.spec. Do not edit.\n"
        + dump_all([crd()])
    )


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else CRD_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    print(target)
