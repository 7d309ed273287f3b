"""Render ``docs/settings.md`` from the settings classes (never written by hand).

``python hack/settings_reference.py > docs/settings.md`` (``make settings-doc``); a test fails when
the page and the classes disagree.
"""

from __future__ import annotations

from pydantic import BaseModel

from edgeloop.core.settings import PlatformSettings


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _rows(annotation, f"{prefix}{name.upper()}__")
            continue
        default = field.get_default(call_default_factory=True)
        description = " ".join((field.description or "").split())
        shown = f"`{default!s}`" if default != "" else "(empty)"
        rows.append(f"| `{prefix}{name.upper()}` | {shown} | {description} |")
    return rows


def render() -> str:
    """The settings reference page as Markdown."""
    header = [
        "# Settings reference",
        "",
        "Generated from `edgeloop.core.settings.PlatformSettings` by",
        "`python hack/settings_reference.py`; do not edit by hand.",
        "",
        "Every setting is read from the environment (or a `.env` file) once, when a",
        "command starts. Nested groups use `__`.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    return "\n".join(header + _rows(PlatformSettings, "EDGELOOP_")) + "\n"


if __name__ == "__main__":
    print(render(), end="")
