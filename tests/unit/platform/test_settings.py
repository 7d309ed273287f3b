from pathlib import Path

from edgeloop import settings_reference
from edgeloop.settings import load_settings


def test_docs_settings_page_is_generated_from_the_classes():
    page = Path(__file__).resolve().parents[3] / "docs" / "settings.md"
    assert page.read_text() == settings_reference.render(), (
        "run: python -m edgeloop.settings_reference > docs/settings.md"
    )


def test_environment_and_nested_groups(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    monkeypatch.setenv("EDGELOOP_REGISTRY__MODEL_NAME", "compressor-failure")
    settings = load_settings()
    assert settings.registry.model_name == "compressor-failure"
    assert settings.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("EDGELOOP_REGISTRY__TRACKING_URI", "http://127.0.0.1:5000")
    assert load_settings().tracking_uri() == "http://127.0.0.1:5000"
