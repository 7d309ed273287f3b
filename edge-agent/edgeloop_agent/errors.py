"""Errors raised by the edge agent.

The agent's branch of the one root, ``edgeloop_agent.contracts.EdgeloopError``::

    EdgeloopError              (edgeloop_agent.contracts.errors; the whole tree is there)
    ├── AgentError             (status_code 500) root of the agent's own errors
    │   ├── InputError         a request breaks the input contract (422, or 413 when too big)
    │   ├── ModelNotFoundError a request names a model this agent does not serve (404)
    │   ├── NoModelError       inference asked of a monitor-only bundle (409)
    │   └── ModelNotReadyError no verified model is active yet (503)
    └── ContractError          (from edgeloop_agent.contracts, status_code 422)
        └── BundleError            a bundle is missing, corrupt or fails its digest

``BundleError`` lives with the contract because the pipeline and the platform
verify bundles too. HTTP status codes live here only so that one API handler
can turn any of these into a JSON body; core code never imports FastAPI.
"""

from __future__ import annotations

from edgeloop_agent.contracts.errors import BundleError, ContractError, EdgeloopError

__all__ = [
    "AgentError",
    "BundleError",
    "ContractError",
    "EdgeloopError",
    "InputError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "NoModelError",
]


class AgentError(EdgeloopError):
    """Root of every error the agent raises on purpose."""

    status_code = 500


class InputError(AgentError):
    """Input that breaks the model's input contract."""

    status_code = 422

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelNotFoundError(AgentError):
    """The request names a model this agent does not serve."""

    status_code = 404


class ModelNotReadyError(AgentError):
    """No verified model is active yet; the caller should retry."""

    status_code = 503


class NoModelError(AgentError):
    """Inference asked of a monitor-only bundle, which has no model to run.

    409: the request is well formed, the agent's state refuses it; ``/predict``
    still takes readings for drift and data-quality windows.
    """

    status_code = 409
