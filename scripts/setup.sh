#!/usr/bin/env bash
# One set-up for `make demo`, `make test`, `make bench` and CI: Debian packages (when root with
# apt), then .venv with the pinned Python stack. Safe to run again; it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

# the real set (mixstyle realset, docs/REAL_SET.md): libopenmpt0 renders the tracker modules,
# h2cli (hydrogen) the drum songs of hydrogen-data; the game packages with the modules are not
# installed: the builder fetches them itself (apt-get download + dpkg-deb -x into its cache)
# chromium: the studio page tests drive it headless through Playwright (no browser download)
DEBS="zam-plugins jackd2 libportaudio2 fluidsynth fluid-soundfont-gm mma libopenmpt0 hydrogen hydrogen-data chromium"
missing=""
for p in $DEBS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: missing Debian packages:$missing (install them as root: apt-get install$missing)" >&2
    echo "setup: make test and CI fail the tests that need them (pytest by hand skips them)" >&2
  fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
