"""Each package's ``__all__`` is sorted and names only what exists (httpx's check)."""

import importlib

import pytest


def isort_style(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions (ruff RUF022's order)."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize(
    "name",
    [
        "edgeloop",
        "edgeloop_agent",
        "edgeloop_agent.contracts",
        "edgeloop_agent.features",
        "edgeloop_components",
    ],
)
def test_all_is_sorted_and_complete(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=isort_style)
    for item in exported:
        assert hasattr(module, item), item


def test_platform_package_import_is_light():
    import subprocess
    import sys

    code = "import sys, edgeloop, edgeloop.cli; print(sorted({'mlflow','kfp','pandas','xgboost'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
