"""The control plane's errors: its branch of the one root.

The root and the retry classes live in ``edgeloop_agent.contracts.errors`` (the
leaf every package may import) and are re-exported here::

    EdgeloopError                  root; the CLI catches it alone and prints one line
    ├── UsageError                 the user's input is invalid (bad reference, flag)
    ├── NotFoundError              a model, version or alias does not exist
    ├── RetryableError(delay=)     worth trying again later (server unreachable, 5xx)
    ├── PermanentError             retrying cannot help (4xx other than 404/409)
    ├── ContractError, AgentError  the agent's branch
    └── ComponentError             the pipeline's branch

Callers decide to retry on the class, never by parsing messages. Errors from
MLflow, kfp or Kubernetes are classified once, at the adapter that called them
(by exception class or HTTP status), and re-raised with ``raise ... from exc``
so the cause stays in the traceback.
"""

from __future__ import annotations

from edgeloop_agent.contracts.errors import (
    EdgeloopError,
    PermanentError,
    RetryableError,
    retry_delay,
)

__all__ = [
    "EdgeloopError",
    "NotFoundError",
    "PermanentError",
    "RetryableError",
    "UsageError",
    "retry_delay",
]


class UsageError(EdgeloopError):
    """Invalid input from the user."""


class NotFoundError(EdgeloopError):
    """The named object does not exist."""
