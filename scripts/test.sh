#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the loopback peers the tests start
# (dnsmasq, tinyproxy, openssl and Chromium from Debian; moto's S3 server from PyPI) if
# missing, then checks formatting and lints, then runs every test, including the install
# engine's crash tests (feature test-actions). Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ] || need+=(tinyproxy-bin)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test peers: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -c 'import moto.server' >/dev/null 2>&1 || {
  echo "installing moto[server] (S3 peer for the artifact store tests)"
  python3 -m pip install -q 'moto[server]'
}

cargo fmt --check
# The shipped build (default features) must compile on its own; lints and tests cover all.
cargo check --locked --bins
cargo clippy --all-targets --all-features --locked -- -D warnings
cargo test --all-targets --all-features --locked
