#!/bin/bash
# Add the built box to vagrant as "devstack-test" unless that exact file is already added.
# Usage: vm/add-box.sh BOX_FILE   (VAGRANT_HOME decides where vagrant keeps it)
set -euo pipefail
BOX=$1
HOME_DIR=${VAGRANT_HOME:-$HOME/.vagrant.d}
MARK="$HOME_DIR/devstack-test.box-source"
if [ "$(cat "$MARK" 2>/dev/null)" != "$BOX" ] || ! vagrant box list 2>/dev/null | grep -q '^devstack-test '; then
  vagrant box add --force --name devstack-test "$BOX" >/dev/null
  mkdir -p "$HOME_DIR"; echo "$BOX" > "$MARK"
fi
echo "box devstack-test <- $BOX"
