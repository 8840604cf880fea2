#!/usr/bin/env bash
# Fresh machine -> the example chat app running under devstack at http://127.0.0.1:5000/.
# Installs nginx from the OS packages if it is missing, devstack with the app stack, then runs
# `devstack up` in the foreground (Ctrl-C stops everything). Extra arguments go to `devstack up`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nginx-light
  elif command -v brew >/dev/null 2>&1; then
    brew install nginx
  else
    echo "example.sh: install nginx with your OS package manager, then run this again" >&2
    exit 1
  fi
fi
python3 -m pip install -q -e '.[app]'
exec python3 -m devstack up --config examples/chat "$@"
