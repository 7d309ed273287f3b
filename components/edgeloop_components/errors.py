"""Errors raised by the training-pipeline logic.

The pipeline's branch of the one root (``edgeloop_agent.contracts.errors``)::

    EdgeloopError
    └── ComponentError                 root of this branch: a step cannot go on
        ├── SchemaError                the dataset schema file is missing or invalid
        ├── DataValidationError        the data breaks its schema beyond thresholds
        ├── TrainingError              training/evaluation cannot produce a model
        └── RegistryError              the MLflow registry refused an operation
            └── RegistryUnavailableError   also a RetryableError: unreachable, 5xx

Every message names what is wrong and where (file, column, rule, share), so a
user can act on the one line the CLI prints.
"""

from __future__ import annotations

from edgeloop_agent.contracts.errors import EdgeloopError, RetryableError


class ComponentError(EdgeloopError):
    """Root of the pipeline logic's errors."""


class SchemaError(ComponentError):
    """The dataset schema cannot be used."""


class DataValidationError(ComponentError):
    """The data breaks its contract; ``violations`` lists every broken rule."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"{violations[0]}{more}")


class TrainingError(ComponentError):
    """Training or evaluation cannot go on with this data."""


class RegistryError(ComponentError):
    """The model registry refused an operation or is unreachable."""


class RegistryUnavailableError(RegistryError, RetryableError):
    """The registry could not be reached or answered 5xx: worth retrying."""

    def __init__(self, message: str, delay: float = 5.0) -> None:
        RetryableError.__init__(self, message, delay)
