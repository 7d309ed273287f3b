"""A real S3 API server on 127.0.0.1 for tests: moto's standalone server, as a process.

The code under test only learns its endpoint URL (``AWS_ENDPOINT_URL``), the
way it would learn MinIO's or Ceph RGW's; nothing imports moto in-process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from edgeloop.demo.processes import spawn_logged

from .conftest import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "edgeloop-test",
    "AWS_SECRET_ACCESS_KEY": "edgeloop-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the env a client needs to reach it."""

    url: str
    env: dict[str, str]

    def filesystem(self):  # noqa: ANN201 - s3fs has no type hints
        """An s3fs client for the test's own setup and checks."""
        import s3fs

        return s3fs.S3FileSystem(
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=self.url,
        )


@contextmanager
def s3_server(root: Path) -> Iterator[S3Server]:
    """Start ``moto.server`` on a free port; yield when it answers."""
    port = free_port()
    log = root / "s3-server.log"
    proc = spawn_logged(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log,
        "wb",
        env={**os.environ, **CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        "S3 server did not start: " + log.read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield S3Server(
            url, {**CREDENTIALS, "AWS_ENDPOINT_URL": url, "MLFLOW_S3_ENDPOINT_URL": url}
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
