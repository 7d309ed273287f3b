"""Errors raised by the training-pipeline logic.

Hierarchy::

    ComponentError                 root: a step cannot go on
    ├── SchemaError                the dataset schema file is missing or invalid
    ├── DataValidationError        the data breaks its schema beyond thresholds
    ├── TrainingError              training/evaluation cannot produce a model
    └── RegistryError              the MLflow registry refused or is unreachable

Every message names what is wrong and where (file, column, rule, share), so a
user can act on the one line the CLI prints.
"""

from __future__ import annotations


class ComponentError(Exception):
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
