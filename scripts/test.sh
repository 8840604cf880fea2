#!/usr/bin/env bash
# Fresh machine -> the whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what the tests need: nginx, Debian's Chromium + ChromeDriver (the browser tests),
# bindfs (a FUSE mount standing in for VM shared folders),
# devstack with its test extras; then runs the real-VM tier when asked (DEVSTACK_VM_TESTS=1, or
# CI=true) and finally every other tier in one pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/lib/chromium/chromium ] || need+=(chromium chromium-driver)
# A real FUSE filesystem for doctor's shared-folder checks (sendfile, gunicorn's inotify reload).
command -v bindfs >/dev/null 2>&1 || need+=(bindfs)
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi
python3 -m pip install -q -e '.[test]'

# The fast tier first: pure logic, no process (a broken seam fails here in seconds).
t0=$(date +%s)
python3 -m pytest -m unit -q -p no:cacheprovider
echo "unit tier: $(( $(date +%s) - t0 )) s"

status=0
if [ "${DEVSTACK_VM_TESTS:-}" = "1" ] || [ "${CI:-}" = "true" ]; then
  if [ -x .ci/vm-tier ]; then
    bash .ci/vm-tier || status=$?
  fi
fi
# The VM tier ran above, inside its own network namespace; here it is skipped.
DEVSTACK_VM_TESTS=0 python3 -m pytest "$@" || status=$?
exit "$status"
