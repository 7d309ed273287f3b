"""Request bodies in the OpenAPI document for routes that parse their own body.

Both services parse bodies with pydantic-core straight from bytes (faster than
FastAPI's body parameters), so FastAPI cannot describe them. This puts each
body model's JSON schema into the document properly: the model's ``$defs``
become ``components/schemas`` entries and references point there, so clients,
generators and fuzzers (schemathesis) see the real contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/{model}"


def with_bodies(
    build: Callable[[], dict[str, Any]],
    bodies: dict[tuple[str, str], type[BaseModel]],
) -> Callable[[], dict[str, Any]]:
    """Wrap an app's ``openapi()`` so ``(method, path)`` routes document ``bodies``."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cache:
            spec = build()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for (method, path), model in bodies.items():
                schema = model.model_json_schema(ref_template=REF)
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
                spec["paths"][path][method]["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": REF.format(model=model.__name__)}
                        }
                    },
                }
            cache.update(spec)
        return cache

    return openapi
