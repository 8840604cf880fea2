#!/usr/bin/env bash
# Fresh machine -> the whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what the tests need: nginx, Debian's Chromium + ChromeDriver (the browser tests),
# bindfs (a FUSE mount standing in for VM shared folders), tmux (the terminal-closing fault),
# redis-server (the message queue of several Socket.IO nodes),
# and devstack with its test extras into the clone's venv .venv, made with the distribution's
# python3 (PYTHON=... picks another; scripts/venv.sh); then, in CI, a sampled mutation run of the
# pure modules (.ci/mutation); the real-VM tier when asked (DEVSTACK_VM_TESTS=1, or CI=true) and
# finally every other tier in one pytest run, all with the
# venv's python. Arguments replace that last run's default `-m "not unit"` (e.g. a test file).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
. scripts/venv.sh

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/lib/chromium/chromium ] || need+=(chromium chromium-driver)
# A real FUSE filesystem for doctor's shared-folder checks (sendfile, gunicorn's inotify reload).
command -v bindfs >/dev/null 2>&1 || need+=(bindfs)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# The message queue of app.nodes > 1 (several Socket.IO nodes relaying emits through Redis).
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  apt_install "${need[@]}"
fi
use_venv test

# The fast tier first: pure logic, no process (a broken seam fails here in seconds).
t0=$(date +%s)
"$py" -m pytest -m unit -q -p no:cacheprovider
echo "unit tier: $(( $(date +%s) - t0 )) s"

status=0
# Mutation testing: do the unit tests notice a changed value, word or comparison in the pure
# modules? In CI (or with MUTATION_SAMPLE=N) every 5th mutant of each function and the score per
# module; a module surely below 85 % fails the run. `make mutation` runs every mutant.
if [ "${CI:-}" = "true" ] || [ -n "${MUTATION_SAMPLE:-}" ]; then
  MUTATION_SAMPLE=${MUTATION_SAMPLE:-5} MUTATION_MIN=${MUTATION_MIN:-85} PYTHON=$py \
    bash .ci/mutation || status=$?
fi
if [ "${DEVSTACK_VM_TESTS:-}" = "1" ] || [ "${CI:-}" = "true" ]; then
  PYTHON=$py bash .ci/vm-tier || status=$?
fi
# The VM tier ran above, inside its own network namespace; here it is skipped. Without
# arguments, every other tier but the unit one, which ran first (not twice); pytest's summary
# line stays the last line of the output.
if [ $# -eq 0 ]; then
  set -- -m "not unit"
fi
DEVSTACK_VM_TESTS=0 "$py" -m pytest "$@" || status=$?
exit "$status"
