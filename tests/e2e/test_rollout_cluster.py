"""Against a real cluster (opt-in: --with-e2e, KUBECONFIG set, KubeEdge or K3s).

Installs the CRD, server-side applies a rendered wave with the same sink the
operator uses, and checks the objects exist; then prunes them.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeloop.rollout.apply import KubernetesSink
from edgeloop.rollout.crd import CRD_PATH

from ..unit.platform.rollout.test_render import rendered

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_server_side_apply_and_prune_on_a_real_cluster():
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("set KUBECONFIG to a K3s (or KubeEdge) cluster")
    from kubernetes import client, config

    kubectl = str(Path(sys.executable).with_name("kubectl"))
    subprocess.run(
        [kubectl, "apply", "--server-side", "-f", str(ROOT / CRD_PATH)], check=True
    )
    subprocess.run([kubectl, "create", "namespace", "edgeloop"], check=False)
    config.load_kube_config()
    api = client.ApiClient()
    objects = rendered("k3s", 0)
    KubernetesSink(api).apply("pumps", objects, {}, "e2e")
    apps = client.AppsV1Api(api)
    assert apps.read_namespaced_deployment(
        "pumps-canary-agent", "edgeloop"
    ).metadata.managed_fields
    KubernetesSink(api).apply("pumps", objects[:1], {}, "e2e")  # prune the rest
    names = [d.metadata.name for d in apps.list_namespaced_deployment("edgeloop").items]
    assert "pumps-canary-agent" not in names
