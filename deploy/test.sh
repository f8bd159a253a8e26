#!/usr/bin/env bash
# The deployment tests: the Kubernetes manifests against the API schemas
# (offline), then the compose deployment for real (deploy/test_compose.py).
# Skipped, with a message, only where no Docker engine runs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${RAFTCART_DEPLOY_VENV:-$HOME/.cache/raftcart-deploy-venv}"
. scripts/venv.sh
ensure_venv "$venv" "import kubernetes_validate" "kubernetes-validate==1.37.0"
echo "kubernetes manifests (schemas of Kubernetes 1.30, strict):"
"$venv/bin/kubernetes-validate" --strict -k 1.30.0 deploy/k8s/*.yaml

if ! docker info >/dev/null 2>&1; then
    echo "SKIPPED the compose test: no Docker engine answers here (docker info failed)"
    exit 0
fi
deploy/build-image.sh raftcart:latest
deploy/make-secrets.sh
timeout 900 python3 deploy/test_compose.py
