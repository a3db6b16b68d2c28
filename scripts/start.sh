#!/usr/bin/env bash
# The one command that installs and starts the router on the embedded default configuration
# (config/router.yaml: spool and LMDB index under ./data, plain listener DICOM_ROUTER on 11112).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
exec node_modules/.bin/node scripts/router.ts start --config "${ROUTER_CONFIG:-config/router.yaml}" "$@"
