"""One error root; retryable vs permanent decided by class or HTTP status, never by text."""

import inspect

import pytest
import requests
from kfp_server_api.exceptions import ApiException
from mlflow.exceptions import MlflowException, RestException
from typer.testing import CliRunner

import edgeloop_agent.errors as agent_errors
import edgeloop_components.errors as component_errors
from edgeloop.core import errors as platform_errors
from edgeloop.provenance.registry import classify_mlflow
from edgeloop.train.pipeline_runs import kfp_error
from edgeloop_agent.contracts import EdgeloopError, RetryableError, retry_delay
from edgeloop_components.registration import is_transient


def _classes(module):
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("edgeloop")
    ]


@pytest.mark.parametrize("module", [agent_errors, component_errors, platform_errors])
def test_every_family_hangs_under_the_one_root(module):
    classes = _classes(module)
    assert classes
    assert all(issubclass(c, EdgeloopError) for c in classes)


def test_the_cli_catches_the_root_alone():
    from edgeloop.cli import _Group

    source = inspect.getsource(_Group.invoke)
    assert "except EdgeloopError" in source
    assert "ComponentError" not in source and "ContractError" not in source


def test_a_component_error_becomes_one_line_and_exit_1(monkeypatch):
    # raised deep inside a command, caught at the root by its base class only
    from edgeloop.cli import app
    from edgeloop.cli import models as models_cli

    def boom():
        raise component_errors.RegistryError("registry: refused")

    monkeypatch.setattr(models_cli, "_registry", boom)
    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["error: registry: refused"]


def _connection_failure() -> MlflowException:
    """What MLflow's REST client raises: a plain MlflowException while handling."""
    try:
        try:
            raise requests.exceptions.ConnectionError("Connection refused")
        except requests.exceptions.ConnectionError as exc:
            raise MlflowException(f"API request failed with exception {exc}")  # noqa: B904
    except MlflowException as outer:
        return outer


def test_mlflow_errors_are_classified_by_class_and_status_not_text():
    down = _connection_failure()
    assert is_transient(down)
    assert isinstance(classify_mlflow(down, "m", "http://x", "t"), RetryableError)
    # a 4xx whose text mentions "Connection" stays permanent: no text matching
    bad = RestException(
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "Connection param"}
    )
    assert not is_transient(bad)
    classified = classify_mlflow(bad, "m", "http://x", "Connection param")
    assert isinstance(classified, platform_errors.PermanentError)
    missing = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"})
    assert isinstance(
        classify_mlflow(missing, "m", "u", "no"), platform_errors.NotFoundError
    )
    unavailable = RestException(
        {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}
    )
    assert retry_delay(classify_mlflow(unavailable, "m", "u", "busy")) == 5


def test_kfp_submission_errors_are_classified_by_class_and_status():
    assert (
        retry_delay(kfp_error(ApiException(status=503, reason="busy"), "submit")) == 10
    )
    assert (
        retry_delay(kfp_error(ApiException(status=429, reason="slow"), "submit")) == 10
    )
    assert (
        retry_delay(kfp_error(requests.exceptions.ConnectionError("x"), "submit")) == 10
    )
    # a ValueError (bad argument) can never succeed by retrying
    assert isinstance(
        kfp_error(ValueError("bad host"), "submit"), platform_errors.PermanentError
    )
    assert isinstance(
        kfp_error(ApiException(status=400, reason="bad"), "submit"),
        platform_errors.PermanentError,
    )


def test_registry_unavailable_is_both_a_registry_error_and_retryable():
    exc = component_errors.RegistryUnavailableError("registry down")
    assert isinstance(exc, component_errors.RegistryError)
    assert retry_delay(exc) == 5.0
