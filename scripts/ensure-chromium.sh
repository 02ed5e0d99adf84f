#!/bin/sh
# Run by `npm test` (pretest): the visualizer's browser test drives Debian's
# Chromium at /usr/bin/chromium through playwright-core, never a browser that
# playwright downloads. Installs it when it is missing and this user may
# (root, or passwordless sudo); otherwise says what to run.
set -eu
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0

how="install Debian's chromium (sudo apt-get install chromium), then run npm test again"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "npm test: the browser test needs Chromium at $CHROMIUM: $how" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "npm test: the browser test needs Chromium at $CHROMIUM and this user cannot install it: $how" >&2
  exit 1
fi
echo "npm test: installing Debian's chromium for the visualizer's browser test" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "npm test: apt-get installed chromium but $CHROMIUM is missing: $how" >&2; exit 1; }
