# shellcheck shell=bash
# Sourced by example.sh and test.sh: the clone's own venv, .venv, made with the distribution's
# python3. Nothing is ever pip-installed into the system Python (on Debian 12 and Ubuntu 24.04
# PEP 668 refuses that: "externally-managed-environment").
#
#   use_venv EXTRAS   -> $py: the venv's python, with devstack[EXTRAS] installed from this clone
#
# PYTHON picks the interpreter the venv is made from (default: python3 on PATH). A .venv that
# exists and works is reused (whichever Python made it); a broken one is made again. If
# `$PYTHON -m venv` fails (Debian/Ubuntu without python3-venv), python3-venv is installed
# with apt-get. The install is skipped when .venv already holds this clone's devstack with the
# same pyproject.toml and extras (a stamp in .venv), so a second run starts at once.
# VENV_DIR names another venv folder (.ci/mutation keeps mutmut out of .venv).
set -euo pipefail
VENV_DIR=${VENV_DIR:-.venv}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

venv_works() {
  [ -x "$VENV_DIR/bin/python" ] && "$VENV_DIR/bin/python" -m pip --version >/dev/null 2>&1
}

make_venv() {
  local base=${PYTHON:-python3}
  if ! command -v "$base" >/dev/null 2>&1; then
    echo "$0: $base not found: install python3 (3.11 or newer), or set PYTHON to one" >&2
    exit 1
  fi
  if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "$0: $base is Python $("$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])'):" \
      "devstack needs 3.11 or newer; set PYTHON to one" >&2
    exit 1
  fi
  rm -rf "$VENV_DIR"
  echo "venv: making $VENV_DIR with $base ($("$base" -V 2>&1))"
  if "$base" -m venv "$VENV_DIR"; then
    return
  fi
  rm -rf "$VENV_DIR"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$0: '$base -m venv' failed: install your distribution's venv package, then run this again" >&2
    exit 1
  fi
  # python3-venv is the default python3's; another Debian/Ubuntu python3.X needs python3.X-venv.
  local pkgs=(python3-venv) ver
  ver=$("$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if apt-cache show "python$ver-venv" >/dev/null 2>&1; then pkgs+=("python$ver-venv"); fi
  echo "venv: '$base -m venv' failed: installing ${pkgs[*]}"
  apt_install "${pkgs[@]}"
  "$base" -m venv "$VENV_DIR"
}

use_venv() {
  local extras=$1 stamp
  if venv_works; then
    echo "venv: reusing $VENV_DIR ($("$VENV_DIR/bin/python" -V 2>&1))"
  else
    [ ! -e "$VENV_DIR" ] || echo "venv: $VENV_DIR has no working python/pip: making it again"
    make_venv
  fi
  py=$PWD/$VENV_DIR/bin/python
  # What is installed: this clone (editable), for this pyproject.toml, with these extras.
  stamp=$("$py" -c 'import hashlib, sys; print(sys.argv[1], hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())' "$extras")
  if grep -qxF "$stamp" "$VENV_DIR/devstack-installed" 2>/dev/null &&
    "$py" -c 'import os, sys, devstack; sys.exit(os.path.dirname(os.path.dirname(os.path.realpath(devstack.__file__))) != os.path.realpath("."))' 2>/dev/null; then
    echo "venv: devstack[$extras] already installed"
    return
  fi
  echo "venv: installing devstack[$extras] from this clone into $VENV_DIR"
  "$py" -m pip install -q -e ".[$extras]"
  echo "$stamp" >>"$VENV_DIR/devstack-installed"
}
