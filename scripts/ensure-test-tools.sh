#!/bin/sh
# Run by `npm test` (pretest): the terminal tests drive real full-screen
# programs through tmux (a private server per test), and run vim and less as
# builders. Installs Debian's tmux, vim and less when missing and this user
# may (root, or passwordless sudo); otherwise says what to run. All three are
# required: a test that quietly skips where a program is missing proves
# nothing on the machine that lacks it.
set -eu

missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v vim >/dev/null 2>&1 || missing="$missing vim"
command -v less >/dev/null 2>&1 || missing="$missing less"
[ -z "$missing" ] && exit 0

how="install them (sudo apt-get install$missing), then run npm test again"
cannot() {
  echo "npm test: the terminal tests need tmux, vim and less; missing:$missing ($1): $how" >&2
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
for program in tmux vim less; do
  command -v "$program" >/dev/null 2>&1 || { echo "npm test: apt-get ran but $program is still missing: $how" >&2; exit 1; }
done
