#!/usr/bin/env bash
# Every test of the project, on a fresh machine: installs the real parts the tests use
# (rclone, kubectl, helm, etcd, kube-apiserver; see tools/README.md), then checks format and
# lints and runs the whole test suite against them, then fuzzes each fuzz target for a
# minute (scripts/fuzz.sh).
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -p vsc-agent   # extra arguments go to `cargo test`
#
# A failing phase does not stop the later ones (a lint error never hides a test failure,
# and `--no-fail-fast`: one failing test binary never hides the others); the script exits
# non-zero if any failed. Each phase's time goes to stderr. The tests run with a temp dir
# of their own: whatever they leave in it (or as vsc-* in the system temp dir) fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export VSC_TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"

failed=()
timings=()
phase() { # phase NAME CMD...: runs CMD, records its time and whether it failed
  local name=$1 start=$SECONDS status=0
  shift
  echo "[test] == $name" >&2
  "$@" || status=$?
  timings+=("$name $((SECONDS - start))s")
  echo "[test] $name: $((SECONDS - start))s$( ((status == 0)) || echo ", FAILED (exit $status)")" >&2
  ((status == 0)) || failed+=("$name")
}

install_tools() {
  local out
  out="$(bash tools/install-test-tools.sh)" || return
  bin_dir="${out##*$'\n'}"
}
bin_dir=
phase tools install_tools
if [[ -z "$bin_dir" ]]; then
  echo "[test] the tools did not install: nothing else can run" >&2
  exit 1
fi
export PATH="$bin_dir:$PATH"
# Captured first: a pipe into a reader that exits early fails under pipefail when the writer gets SIGPIPE.
rclone_version="$(rclone version)"
kubectl_version="$(kubectl version --client 2>/dev/null)"
echo "[test] tools: ${rclone_version%%$'\n'*}, ${kubectl_version%%$'\n'*}" >&2

phase fmt cargo fmt --all --check
phase clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# The e2e tests run the operator and agent binaries as processes: build them first.
phase build cargo build --workspace --bins --locked

system_tmp="${TMPDIR:-/tmp}"
vsc_entries() { find "$system_tmp" -mindepth 1 -maxdepth 1 -name 'vsc-*' ! -name 'vsc-test-run.*' | sort; }
before="$(vsc_entries)"
# World-writable and sticky like /tmp: the tests run agents as an unprivileged user.
run_tmp="$(mktemp -d "$system_tmp/vsc-test-run.XXXXXX")"
chmod 1777 "$run_tmp"
trap 'rm -rf "$run_tmp"' EXIT
phase test env TMPDIR="$run_tmp" cargo test --workspace --locked --no-fail-fast "$@"

left="$(find "$run_tmp" -mindepth 1 -maxdepth 1 | sort)"
new_vsc="$(comm -13 <(printf '%s\n' "$before") <(vsc_entries))"
if [[ -n "$left" || -n "$new_vsc" ]]; then
  echo "[test] the tests left these in the temp dir:" >&2
  printf '%s\n' "$left" "$new_vsc" | sed '/^$/d' >&2
  failed+=("temp-dir-leftovers")
fi

# Bounded fuzzing, after the tests: each target for 60 s from its committed corpus
# (scripts/fuzz.sh; cargo-fuzz and the fuzz build cached in $VSC_TOOLS_DIR).
phase fuzz bash scripts/fuzz.sh

echo "[test] phase times: ${timings[*]}" >&2
if ((${#failed[@]})); then
  echo "[test] FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "[test] all passed" >&2
