"""Where a retraining runs: kfp.local on this machine, or a Kubeflow Pipelines server.

Both answer the same three questions so the service can follow a run across
its own restarts: start a run under a name the service chose, tell a run's
state by id, and find a run by that name (for a service killed after
submitting but before it wrote the id down).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from edgeloop.core.errors import EdgeloopError
from edgeloop.core.settings import PlatformSettings
from edgeloop.train import pipeline_runs

RunState = Literal["running", "succeeded", "failed"]


class Backend(Protocol):
    """A place to run the training pipeline."""

    name: str

    def start(
        self, run_name: str, arguments: dict[str, Any], trigger: dict[str, Any]
    ) -> str:
        """Start a run; returns its id (a local run has finished when this returns)."""
        ...

    def state(self, run_id: str) -> tuple[RunState, dict[str, Any]]:
        """The run's state and, once it ended, what it produced or why it failed."""
        ...

    def find(self, run_name: str) -> str | None:
        """The id of a run started under ``run_name``, if the backend knows one."""
        ...


class LocalBackend:
    """kfp.local, in this process: the run ends before :meth:`start` returns.

    A service killed during a local run loses that run (it ran in the service's
    process); on restart the run is unknown here, reported failed, and retried
    per policy.
    """

    name = "local"

    def __init__(
        self,
        settings: PlatformSettings,
        progress: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self._done: dict[str, tuple[RunState, dict[str, Any]]] = {}

    def start(
        self, run_name: str, arguments: dict[str, Any], trigger: dict[str, Any]
    ) -> str:
        """Run the pipeline now; a failing step becomes a failed run, not an exception."""
        run_id = f"local:{run_name}"
        try:
            result = pipeline_runs.run_local(
                self.settings,
                arguments,
                self.progress,
                reason=str(trigger.get("reason", "")),
                trigger=trigger,
            )
        except EdgeloopError as exc:
            self._done[run_id] = ("failed", {"error": str(exc)})
            return run_id
        self._done[run_id] = ("succeeded", result.registered.model_dump(mode="json"))
        return run_id

    def state(self, run_id: str) -> tuple[RunState, dict[str, Any]]:
        """Known runs as they ended; unknown ones were cut short by a restart."""
        return self._done.get(
            run_id,
            ("failed", {"error": "the local run was interrupted (service restarted)"}),
        )

    def find(self, run_name: str) -> str | None:
        """A local run only exists inside the process that ran it."""
        run_id = f"local:{run_name}"
        return run_id if run_id in self._done else None


_KFP_STATES: dict[str, RunState] = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "failed",
    "CANCELING": "running",
    "SKIPPED": "failed",
}


class KfpBackend:
    """A Kubeflow Pipelines server (``kfp.Client``), compiled from the same code."""

    name = "kfp"

    def __init__(self, settings: PlatformSettings, client: Any = None) -> None:
        self.settings = settings
        self.host = settings.pipeline.kfp_host
        self._client = client

    def _kfp(self) -> Any:
        if self._client is None:
            import kfp

            try:
                self._client = kfp.Client(host=self.host)
            except Exception as exc:  # kfp raises many unrelated classes
                raise pipeline_runs.kfp_error(
                    exc, f"Kubeflow Pipelines at {self.host}"
                ) from exc
        return self._client

    def start(
        self, run_name: str, arguments: dict[str, Any], trigger: dict[str, Any]
    ) -> str:
        """Submit under ``run_name`` (the service's key for finding it again)."""
        from edgeloop_components.pipelines.train_edge_model import train_edge_model

        try:
            run = self._kfp().create_run_from_pipeline_func(
                train_edge_model,
                arguments=arguments,
                run_name=run_name,
                experiment_name=self.settings.pipeline.experiment,
            )
        except EdgeloopError:
            raise
        except Exception as exc:
            raise pipeline_runs.kfp_error(
                exc, f"cannot submit to Kubeflow Pipelines at {self.host}"
            ) from exc
        return str(run.run_id)

    def state(self, run_id: str) -> tuple[RunState, dict[str, Any]]:
        """Map the server's run state; an error message comes along when it failed."""
        try:
            run = self._kfp().get_run(run_id)
        except EdgeloopError:
            raise
        except Exception as exc:
            raise pipeline_runs.kfp_error(
                exc, f"cannot read run {run_id} at {self.host}"
            ) from exc
        state = _KFP_STATES.get(str(getattr(run, "state", "") or ""), "running")
        detail: dict[str, Any] = {"kfp_state": str(getattr(run, "state", ""))}
        error = getattr(run, "error", None)
        if error is not None and state == "failed":
            detail["error"] = str(getattr(error, "message", error))[:500]
        return state, detail

    def find(self, run_name: str) -> str | None:
        """The run with this display name, if the server has one."""
        import json

        flt = json.dumps(
            {
                "predicates": [
                    {
                        "key": "display_name",
                        "operation": "EQUALS",
                        "string_value": run_name,
                    }
                ]
            }
        )
        try:
            found = self._kfp().list_runs(filter=flt, page_size=1)
        except EdgeloopError:
            raise
        except Exception as exc:
            raise pipeline_runs.kfp_error(
                exc, f"cannot list runs at {self.host}"
            ) from exc
        runs = getattr(found, "runs", None) or []
        return str(runs[0].run_id) if runs else None
