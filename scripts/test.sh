#!/usr/bin/env bash
# Every test of the project, on a fresh machine: installs the real parts the tests use
# (rclone, kubectl, helm, etcd, kube-apiserver; see tools/README.md), then checks format and
# lints and runs the whole test suite against them.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -p vsc-agent   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export VSC_TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
bin_dir="$(bash tools/install-test-tools.sh | tail -n 1)"
export PATH="$bin_dir:$PATH"
echo "[test] tools: $(rclone version | head -n 1), $(kubectl version --client 2>/dev/null | head -n 1)" >&2

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The e2e tests run the operator and agent binaries as processes: build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
