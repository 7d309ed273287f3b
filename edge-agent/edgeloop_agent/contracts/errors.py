"""The one error root of edgeloop, and how callers decide to retry.

Hierarchy (each package's family hangs under the root; their own ``errors``
modules draw their branch)::

    EdgeloopError                     root: every error edgeloop raises on purpose
    ├── RetryableError(delay=)        transient: try again after ``delay`` seconds
    ├── PermanentError                retrying cannot help
    ├── ContractError (422)           a shared file or record breaks its contract
    │   └── BundleError               a bundle is missing, corrupt or fails its digest
    ├── AgentError (500)              edgeloop_agent.errors: the agent's own errors
    ├── ComponentError                edgeloop_components.errors: the pipeline's logic
    └── UsageError, NotFoundError     edgeloop.core.errors: the control plane's

Callers decide on the class (``isinstance(exc, RetryableError)``), never on the
message text. An adapter that wraps a library's exception and learns it is
transient raises a class that also derives from :class:`RetryableError` (e.g.
``RegistryUnavailableError``), so one ``except RetryableError`` sees them all.

This module is the leaf every package may import: stdlib only.
"""

from __future__ import annotations


class EdgeloopError(Exception):
    """Root of every error edgeloop raises on purpose; the CLI catches only this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryableError(EdgeloopError):
    """A transient failure; ``delay`` suggests when to try again (seconds)."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(EdgeloopError):
    """A failure that retrying will not fix."""


class ContractError(EdgeloopError):
    """A contract violation found while reading shared files or records."""

    status_code = 422


class BundleError(ContractError):
    """A bundle is missing, corrupt or fails its digest; it must not be activated."""


def retry_delay(exc: BaseException) -> float | None:
    """Seconds to wait before retrying ``exc``, or None when retrying cannot help."""
    return exc.delay if isinstance(exc, RetryableError) else None
