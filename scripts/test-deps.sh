#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages, on a fresh Debian machine with Node and npm:
# nats-server (real JetStream for the deny-set tests). Idempotent: does nothing when it is already there.
set -euo pipefail
if ! command -v nats-server >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing nats-server from Debian packages…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >/dev/null
fi
# Debian puts it in /usr/sbin, which a non-root PATH may lack; tests look there too.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || { echo "nats-server is missing" >&2; exit 1; }
