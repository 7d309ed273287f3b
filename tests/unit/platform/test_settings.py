import importlib.util
from pathlib import Path

from edgeloop.core.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]


def _settings_reference():
    """The generator lives in hack/ (a script, not part of the package)."""
    path = ROOT / "hack" / "settings_reference.py"
    spec = importlib.util.spec_from_file_location("settings_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_settings_page_is_generated_from_the_classes():
    page = ROOT / "docs" / "settings.md"
    assert page.read_text() == _settings_reference().render(), "run: make settings-doc"


def test_environment_and_nested_groups(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    monkeypatch.setenv("EDGELOOP_REGISTRY__MODEL_NAME", "compressor-failure")
    settings = load_settings()
    assert settings.registry.model_name == "compressor-failure"
    assert settings.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("EDGELOOP_REGISTRY__TRACKING_URI", "http://127.0.0.1:5000")
    assert load_settings().tracking_uri() == "http://127.0.0.1:5000"
