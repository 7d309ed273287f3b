"""Secrets mounted as files become settings: names like variables, explicit env wins."""

from __future__ import annotations

import os

from edgeloop.core import secret_files
from edgeloop.core.settings import load_settings


def test_mounted_files_set_settings_and_credentials(tmp_path, monkeypatch):
    (tmp_path / "EDGELOOP_INTAKE__READER_TOKEN").write_text("reader-token\n")
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("key-id")
    (tmp_path / "..data").mkdir()  # Kubernetes' projection internals: skipped
    (tmp_path / "not a name").write_text("x")
    monkeypatch.delenv("EDGELOOP_INTAKE__READER_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "explicit")
    monkeypatch.setenv("EDGELOOP_SECRETS_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.intake.reader_token == "reader-token"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "explicit"  # an explicit value wins
    monkeypatch.delenv("EDGELOOP_INTAKE__READER_TOKEN")


def test_no_directory_is_normal(tmp_path):
    assert secret_files.apply(tmp_path / "nothing-mounted") == []
