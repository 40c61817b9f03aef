#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the loopback peers the tests start
# (dnsmasq, tinyproxy, openssl, Chromium, strace and PostgreSQL 15 from Debian; moto 5.2 from PyPI for S3, STS, IAM, EC2 and EKS;
# Azurite 3.35.0 from npm for Azure Blob; gcp-storage-emulator 2026.7.19 from PyPI for GCS;
# kubectl from Debian and the Python kubernetes client from PyPI for the Kubernetes stand-in;
# schemathesis from PyPI for the quota service's HTTP contract) if
# missing, then checks formatting and lints, then runs every test, including the install
# engine's crash tests (feature test-actions). Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || [ -x /usr/sbin/tinyproxy ] || need+=(tinyproxy-bin)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# strace: the durability tests trace the real binary's writes and fsyncs (tests/it/durability.rs).
command -v strace >/dev/null 2>&1 || need+=(strace)
# GNU time: the benchmarks' peak-memory rows (benches/support).
[ -x /usr/bin/time ] || need+=(time)
# PostgreSQL server binaries (initdb, postgres, psql, pgbench): each quota test starts its own
# throw-away cluster (tests/it/pg.rs); nothing is started here.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql-15)
# kubectl: a Kubernetes client nobody here wrote, run against the Kubernetes API stand-in
# (tests/it/kube_standin.rs); any kubectl that speaks server-side apply will do (Debian's 1.20).
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test peers: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# moto 5.2.x: the tests depend on what it implements and lacks (docs/aws-standin.md); its
# dependency boto3 is the AWS client nobody here wrote that reads back what the stand-in and
# moto hold (tests/it/approved_definition.rs).
python3 -c 'import moto.server, moto; assert moto.__version__.startswith("5.2.")' >/dev/null 2>&1 || {
  echo "installing moto[server] 5.2 (AWS peer: S3, STS, IAM, EC2, EKS)"
  python3 -m pip install -q 'moto[server]>=5.2,<5.3'
}

# Azurite 3.35.0 (the Azure Storage emulator; its newer releases need Node 22): the Blob
# artifact store's peer (tests/it/aks_blob.rs), installed under target/test-peers.
azurite=target/test-peers/node_modules/.bin/azurite-blob
if [ ! -x "$azurite" ] || ! grep -q '"version": "3.35.0"' target/test-peers/node_modules/azurite/package.json 2>/dev/null; then
  echo "installing azurite 3.35.0 (Azure Blob peer)"
  mkdir -p target/test-peers
  npm install --silent --no-audit --no-fund --prefix target/test-peers azurite@3.35.0 >/dev/null
fi

# gcp-storage-emulator (PyPI): the GCS artifact store's peer (tests/it/gke_gcs.rs).
python3 -c 'import importlib.metadata as m; assert m.version("gcp-storage-emulator") == "2026.7.19"' >/dev/null 2>&1 || {
  echo "installing gcp-storage-emulator 2026.7.19 (GCS peer)"
  python3 -m pip install -q 'gcp-storage-emulator==2026.7.19'
}

# The Python kubernetes client: the second client nobody here wrote that reads what kubectl
# applied to the Kubernetes API stand-in.
python3 -c 'import importlib.metadata as m; assert m.version("kubernetes") == "37.0.2"' >/dev/null 2>&1 || {
  echo "installing the Python kubernetes client 37.0.2 (Kubernetes stand-in's second client)"
  python3 -m pip install -q 'kubernetes==37.0.2'
}

# schemathesis: the HTTP client nobody here wrote that checks quota serve against its OpenAPI
# document (tests/it/quota_contract.rs).
python3 -c 'import importlib.metadata as m; assert m.version("schemathesis") == "4.32.5"' >/dev/null 2>&1 || {
  echo "installing schemathesis 4.32.5 (the quota service's contract checker)"
  python3 -m pip install -q 'schemathesis==4.32.5'
}

cargo fmt --check
# The shipped build (default features) must compile on its own, and so must a build without
# the cloud and object-store features (each cloud sits behind its own feature); lints and tests
# cover all features.
cargo check --locked --bins
cargo check --locked --no-default-features --bins
# Every crate of the workspace: realmctl, the bounded server (crates/serve) and the
# stand-ins (crates/standins).
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-targets --all-features --locked
