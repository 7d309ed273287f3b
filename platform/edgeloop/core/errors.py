"""Errors raised by the control plane.

Hierarchy::

    EdgeloopError                  root; the CLI prints its message as one line
    ├── UsageError                 the user's input is invalid (bad reference, flag)
    ├── NotFoundError              a model, version or alias does not exist
    ├── RetryableError(delay=)     worth trying again later (server unreachable, 5xx)
    └── PermanentError             retrying cannot help (4xx other than 404/409)

Callers decide to retry on the class, never by parsing messages. Errors from
MLflow, kfp or Kubernetes are wrapped at the adapter that called them, with
``raise ... from exc`` so the cause stays in the traceback.
"""

from __future__ import annotations


class EdgeloopError(Exception):
    """Root of every error the control plane raises on purpose."""


class UsageError(EdgeloopError):
    """Invalid input from the user."""


class NotFoundError(EdgeloopError):
    """The named object does not exist."""


class RetryableError(EdgeloopError):
    """A transient failure; ``delay`` suggests when to try again (seconds)."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(EdgeloopError):
    """A failure that retrying will not fix."""
