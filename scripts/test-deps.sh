#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: nats-server (real JetStream for the deny-set tests).
# Idempotent: when nats-server is already installed where the tests look for it, it does nothing.
#
# The tests (test/helpers/nats.ts) run /usr/sbin/nats-server when it exists, else the first nats-server on PATH.
# Debian's package puts it in /usr/sbin, which a non-root PATH usually lacks, so PATH alone is not the test.
# Installing: as root with apt-get; as another user with sudo apt-get; without either, it says what to do.
set -euo pipefail

# Where the tests will find it: /usr/sbin first, then PATH.
found() {
  if [ -x /usr/sbin/nats-server ]; then echo /usr/sbin/nats-server; return 0; fi
  command -v nats-server 2>/dev/null
}

if path=$(found); then
  echo "nats-server: $path"
  exit 0
fi

# Installed somewhere the tests do not look (a manual install in ~/.local/bin, ~/go/bin, /opt…): say so rather than
# installing a second copy.
for dir in /usr/local/sbin /usr/local/bin /usr/bin "$HOME/.local/bin" "$HOME/bin" "$HOME/go/bin" /opt/nats /opt/nats-server; do
  if [ -x "$dir/nats-server" ]; then
    echo "nats-server is at $dir/nats-server, which is not on PATH: the tests look in /usr/sbin and on PATH." >&2
    echo "Run the tests with it on PATH, e.g.: PATH=\"$dir:\$PATH\" npm run test:all" >&2
    exit 1
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "nats-server is missing and there is no apt-get here: install nats-server (2.2 or newer, JetStream) on PATH," >&2
  echo "e.g. from https://github.com/nats-io/nats-server/releases, then run this again." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "nats-server is missing; installing it needs root: run as root (or install sudo): apt-get install nats-server" >&2
  exit 1
fi
echo "installing nats-server from Debian packages (${SUDO[*]:-as root}: apt-get install nats-server)…"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
if path=$(found); then
  echo "nats-server: $path"
else
  echo "apt-get installed nats-server, but it is neither in /usr/sbin nor on PATH" >&2
  exit 1
fi
