#!/bin/sh
# Run by `npm test` (pretest): the terminal tests drive real full-screen
# programs through tmux (a private server per test), and run vim and less as
# builders. Installs Debian's tmux, vim (vim-tiny is enough) and less when
# missing and this user may (root, or passwordless sudo); otherwise says what
# to run. tmux is required; vim and less only widen what is tested.
set -eu

missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v vim >/dev/null 2>&1 || command -v vi >/dev/null 2>&1 || missing="$missing vim-tiny"
command -v less >/dev/null 2>&1 || missing="$missing less"
[ -z "$missing" ] && exit 0

how="install them (sudo apt-get install$missing), then run npm test again"
cannot() {
  if command -v tmux >/dev/null 2>&1; then
    # Only the optional programs are missing: their tests are skipped, the rest run.
    echo "npm test: the terminal tests skip what needs$missing ($1): $how" >&2
    exit 0
  fi
  echo "npm test: the terminal tests need tmux; missing:$missing ($1): $how" >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || cannot "there is no apt-get here"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  cannot "this user cannot install packages"
fi
echo "npm test: installing Debian's$missing for the terminal tests" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
# shellcheck disable=SC2086 # one word per package
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
command -v tmux >/dev/null 2>&1 || { echo "npm test: apt-get ran but tmux is still missing: $how" >&2; exit 1; }
