"""Errors raised by the edge agent.

Hierarchy::

    AgentError                 (status_code 500) root of the agent's own errors
    └── InputError             a request or payload breaks the input contract (422)
    ContractError              (from edgeloop_agent.contracts, status_code 422)
    └── BundleError            a bundle is missing, corrupt or fails its digest

``BundleError`` lives with the contract because the pipeline and the platform
verify bundles too. HTTP status codes live here only so that one API handler
can turn any of these into a JSON body; core code never imports FastAPI.
"""

from __future__ import annotations

from edgeloop_agent.contracts.bundle_files import BundleError, ContractError

__all__ = ["AgentError", "BundleError", "ContractError", "InputError"]


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(AgentError):
    """Input that breaks the model's input contract."""

    status_code = 422
