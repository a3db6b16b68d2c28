#!/usr/bin/env bash
# The one command that installs what the tests need and runs them (README: "Run the tests").
# - Debian peers: DCMTK and Orthanc are the real peers of the interop tests. Installed here
#   when missing and we are root; otherwise it prints the one line to run.
# - npm ci when node_modules is missing or older than the lock file.
# - type-check (tsc --noEmit), then every ava test, with a closing "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v storescu >/dev/null 2>&1 || missing+=(dcmtk)
[ -x /usr/sbin/Orthanc ] || command -v Orthanc >/dev/null 2>&1 || missing+=(orthanc)
# The inspector's browser test drives Debian's chromium (playwright-core, no browser download).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# PixelMed's storage SCU (Java) and GDCM's gdcmscu: third-party senders of the interop tests.
[ -f /usr/share/java/pixelmed.jar ] || missing+=(pixelmed-apps)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
# The PixelMed Q/R tests run a Java helper through the source launcher: it needs the JDK's compiler.
java --list-modules 2>/dev/null | grep -q '^jdk.compiler' || missing+=(default-jdk-headless)
command -v gdcmscu >/dev/null 2>&1 || missing+=(libgdcm-tools)
# `router certs init` (and its tests) make the lab PKI with the openssl command.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The cluster tests start private PostgreSQL clusters (initdb, pg_ctl from Debian's postgresql).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "The interop tests need DCMTK, Orthanc, Chromium, PixelMed, a Java runtime, GDCM and PostgreSQL. Run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
export PATH="$PWD/node_modules/.bin:$PATH"
echo "node $(node --version), $(storescu --version 2>/dev/null | head -1)"

echo "== type-check"
tsc --noEmit

echo "== tests"
mkdir -p test-artifacts
set +e
ava --tap "$@" | tee test-artifacts/ava.tap
status=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^ok ' test-artifacts/ava.tap || true)
failed=$(grep -cE '^not ok ' test-artifacts/ava.tap || true)
echo "$passed passed, $failed failed"
if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
exit "$status"
