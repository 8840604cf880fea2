#!/usr/bin/env bash
# Fresh machine -> the example chat app running under devstack at http://127.0.0.1:5000/.
# Installs nginx from the OS packages if it is missing, makes (or reuses) the clone's venv .venv
# with the distribution's python3 (PYTHON=... picks another) and installs devstack with the app
# stack into it (scripts/venv.sh), then runs `devstack up` from that venv in the foreground
# (Ctrl-C stops everything). Extra arguments go to `devstack up`.
# EXAMPLE=nodes runs examples/nodes instead: three Socket.IO nodes and a message queue, for which
# redis-server is installed too (and the redis client into the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
. scripts/venv.sh

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if command -v apt-get >/dev/null 2>&1; then
    apt_install nginx-light
  elif command -v brew >/dev/null 2>&1; then
    brew install nginx
  else
    echo "example.sh: install nginx with your OS package manager, then run this again" >&2
    exit 1
  fi
fi
example=${EXAMPLE:-chat}
extras=app
if [ "$example" = nodes ]; then
  extras=nodes
  if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    if command -v apt-get >/dev/null 2>&1; then
      apt_install redis-server
    elif command -v brew >/dev/null 2>&1; then
      brew install redis
    else
      echo "example.sh: install redis-server with your OS package manager, then run this again" >&2
      exit 1
    fi
  fi
fi
use_venv "$extras"
exec "$py" -m devstack up --config "examples/$example" "$@"
