"""What the pipeline's register step hands to the control plane.

The ``register_model`` step returns these fields as a flat ``dict`` output
(KFP carries it as a struct); the platform reads it back with
:meth:`RegisteredModel.model_validate`, so a field added or renamed on one side
fails loudly on the other instead of surfacing as a ``KeyError`` later.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RegisteredModel(BaseModel):
    """One registered model version and whether the gates promoted it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    run_id: str
    """The MLflow run that holds the bundle."""
    bundle_uri: str
    """``runs:/<run>/bundle``: where the registry keeps the bundle."""
    bundle_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    promoted: bool
    """Whether ``champion`` moved to this version (every gate passed)."""
    previous_champion: int | None = None

    @property
    def ref(self) -> str:
        """``NAME:VERSION``, the form every CLI command takes."""
        return f"{self.name}:{self.version}"
