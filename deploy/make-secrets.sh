#!/usr/bin/env bash
# Creates the cluster's secrets for the compose deployment, if missing:
# deploy/secrets/peer.key (node-to-node MACs) and deploy/secrets/admin.token
# (operator routes), 32 random bytes as hex each, readable by the owner
# only. Existing files are kept: every node must keep the same peer key.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p secrets
umask 077
for name in peer.key admin.token; do
    [ -s "secrets/$name" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "secrets/$name"
done
echo "secrets in $(pwd)/secrets: peer.key, admin.token"
