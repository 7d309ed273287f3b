"""Regenerate helm/edgeloop from the kustomize base (``make helm-sync``).

kustomize is the source of truth; the chart is derived: the hydrated base goes
to ``files/platform.yaml`` with a handful of values substituted, the CRD to
``crds/``. ``make check-generated`` (and a test) fail when the two drift.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "edgeloop"
IMAGE = "ghcr.io/edgeloop/edgeloop-platform:0.1.0"
SCHEDULING = """      serviceAccountName: edgeloop-controller
      {{- with .Values.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}"""


# One Secret per site (EdgeRollout runtime.tokenScope: site): agents of a site
# mount edgeloop-node-tokens-<site> and hold no other site's tokens.
NODE_TOKEN_SECRETS = """{{- range $site, $tokens := .Values.nodeTokens }}
---
apiVersion: v1
kind: Secret
metadata:
  labels:
    app.kubernetes.io/part-of: edgeloop
    edgeloop.io/site: {{ $site | quote }}
  name: edgeloop-node-tokens-{{ $site }}
  namespace: {{ $.Values.namespace | default $.Release.Namespace }}
type: Opaque
stringData: {{- toYaml $tokens | nindent 2 }}
{{- end }}
"""


# Config lines of the base and the values that replace them in the chart.
CONFIG_VALUES = {
    "EDGELOOP_REGISTRY__TRACKING_URI: http://mlflow.edgeloop.svc:5000": (
        'EDGELOOP_REGISTRY__TRACKING_URI: {{ include "edgeloop.trackingUri" . | quote }}'
    ),
    "EDGELOOP_INTAKE__URL: http://edgeloop-intake.edgeloop.svc:8000": (
        'EDGELOOP_INTAKE__URL: {{ include "edgeloop.intakeUrl" . | quote }}'
    ),
    "EDGELOOP_PIPELINE__KFP_HOST: ''": (
        "EDGELOOP_PIPELINE__KFP_HOST: {{ .Values.kfp.host | quote }}"
        "\n  {{- with .Values.s3.endpointUrl }}"
        "\n  AWS_ENDPOINT_URL: {{ . | quote }}"
        "\n  MLFLOW_S3_ENDPOINT_URL: {{ . | quote }}"
        "\n  {{- end }}"
    ),
    "EDGELOOP_INTAKE__COLLECT_DIR: ''": (
        "EDGELOOP_INTAKE__COLLECT_DIR: {{ .Values.intake.collectDir | quote }}"
    ),
    "EDGELOOP_LOOP__BASE_DATASET: ''": (
        "EDGELOOP_LOOP__BASE_DATASET: {{ .Values.loop.baseDataset | quote }}"
    ),
    "EDGELOOP_LOOP__DATASET_URI: ''": (
        "EDGELOOP_LOOP__DATASET_URI: {{ .Values.loop.datasetUri | quote }}\n"
        "  EDGELOOP_LOOP__INTERVAL_S: {{ .Values.loop.intervalSeconds | quote }}"
    ),
}
POLICY = "policy.yaml: __POLICY_VALUES__"


def hydrate() -> list[dict]:
    """The kustomize base, hydrated with the kubectl from .venv/bin."""
    kubectl = Path(sys.executable).with_name("kubectl")
    text = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "manifests" / "base")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def render_files() -> dict[Path, str]:
    """Chart files derived from the base: path -> text."""
    docs = hydrate()
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    rest = [
        d for d in docs if d["kind"] not in {"CustomResourceDefinition", "Namespace"}
    ]
    for doc in rest:  # the trigger policy comes from values.loop.policy
        if doc["kind"] == "ConfigMap" and "policy.yaml" in doc.get("data", {}):
            doc["data"]["policy.yaml"] = POLICY.split(": ", 1)[1]
    platform = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in rest)
    platform = platform.replace(
        IMAGE,
        "{{ .Values.image.repository }}"
        "{{ if .Values.image.digest }}@{{ .Values.image.digest }}"
        "{{ else }}:{{ .Values.image.tag }}{{ end }}",
    )
    platform = platform.replace(
        "namespace: edgeloop\n",
        "namespace: {{ .Values.namespace | default .Release.Namespace }}\n",
    )
    for old, new in CONFIG_VALUES.items():
        if old not in platform:
            raise SystemExit(f"helm_sync: {old!r} not in the base any more")
        platform = platform.replace(old, new)
    platform = platform.replace(
        "EDGELOOP_REGISTRY__MODEL_NAME: pump-failure",
        "EDGELOOP_REGISTRY__MODEL_NAME: {{ .Values.modelName | quote }}",
    )
    platform = platform.replace(
        "      serviceAccountName: edgeloop-controller", SCHEDULING
    )
    platform = platform.replace(
        "--namespace=edgeloop",
        "--namespace={{ .Values.namespace | default .Release.Namespace }}",
    )
    start = platform.index("        resources:\n")
    end = platform.index("        securityContext:\n", start)
    platform = (
        platform[:start]
        + "        resources: {{- toYaml .Values.resources | nindent 10 }}\n"
        + platform[end:]
    )
    platform = platform.replace(
        POLICY, "policy.yaml: |\n    {{- toYaml .Values.loop.policy | nindent 4 }}"
    )
    platform += NODE_TOKEN_SECRETS
    header = "# Generated by hack/helm_sync.py from manifests/base. Do not edit.\n"
    return {
        CHART / "files" / "platform.yaml": header + platform,
        CHART / "crds" / "edgeloop.io_edgerollouts.yaml": header
        + yaml.safe_dump(crds[0], sort_keys=False),
    }


def main() -> None:
    """Write the chart files."""
    for path, text in render_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
