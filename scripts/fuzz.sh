#!/usr/bin/env bash
# Bounded fuzzing of every target in fuzz/ (cargo fuzz, libFuzzer), as CI runs it after the
# tests (scripts/test.sh, phase "fuzz"):
#
#   bash scripts/fuzz.sh                 # each target for FUZZ_SECONDS (default 60)
#   bash scripts/fuzz.sh template        # only the targets named
#   FUZZ_RUNS=1000000 bash scripts/fuzz.sh   # a number of executions per target instead
#
# cargo-fuzz is installed with `cargo install --locked` into $VSC_TOOLS_DIR/cargo-fuzz and
# reused while its version stamp matches; the fuzz build's target dir is
# $VSC_TOOLS_DIR/fuzz-target, so a re-run on the same machine rebuilds nothing. The stable
# toolchain builds it: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. No sanitizer
# (-s none: the workspace has no unsafe code on these paths), debug assertions on (-a: an
# overflow is a crash). Each run starts from the committed corpus (fuzz/corpus/<target>),
# copied to $VSC_TOOLS_DIR/fuzz-corpus/<target> so the repo is never written; a crash
# fails the script and leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
CARGO_FUZZ_VERSION="0.13.2"
FUZZ_ROOT="$TOOLS_DIR/cargo-fuzz"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
targets=("$@")
((${#targets[@]})) || targets=(env_config template admission_review)

log() { printf '[fuzz] %s\n' "$*" >&2; }

install_cargo_fuzz() {
  local stamp="$FUZZ_ROOT/.stamp"
  if [[ -x "$FUZZ_ROOT/bin/cargo-fuzz" && "$(cat "$stamp" 2>/dev/null)" == "$CARGO_FUZZ_VERSION" ]]; then
    log "cargo-fuzz $CARGO_FUZZ_VERSION: up to date"
    return
  fi
  log "cargo-fuzz $CARGO_FUZZ_VERSION: cargo install --locked (a few minutes)"
  CARGO_TARGET_DIR="$TOOLS_DIR/cargo-fuzz-build" \
    cargo install --locked --force "cargo-fuzz@$CARGO_FUZZ_VERSION" --root "$FUZZ_ROOT"
  echo "$CARGO_FUZZ_VERSION" >"$stamp"
  rm -rf "$TOOLS_DIR/cargo-fuzz-build"
}

fuzz() { # fuzz SUBCOMMAND ARGS...: cargo fuzz with this project's build flags
  local sub=$1
  shift
  (cd fuzz && RUSTC_BOOTSTRAP=1 "$FUZZ_ROOT/bin/cargo-fuzz" "$sub" --sanitizer none --debug-assertions \
    --target-dir "$TOOLS_DIR/fuzz-target" "$@")
}

install_cargo_fuzz
logs="$TOOLS_DIR/fuzz-logs"
mkdir -p "$logs"
start=$SECONDS
if ! fuzz build >"$logs/build.log" 2>&1; then
  tail -n 40 "$logs/build.log" >&2
  log "the fuzz build failed"
  exit 1
fi
log "build: $((SECONDS - start))s"
if [[ -n "${FUZZ_RUNS:-}" ]]; then bound="-runs=$FUZZ_RUNS"; else bound="-max_total_time=$FUZZ_SECONDS"; fi
for target in "${targets[@]}"; do
  work="$TOOLS_DIR/fuzz-corpus/$target"
  mkdir -p "$work"
  cp fuzz/corpus/"$target"/* "$work"/
  start=$SECONDS
  if ! fuzz run "$target" "$work" -- "$bound" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$logs/$target.log" 2>&1; then
    tail -n 60 "$logs/$target.log" >&2
    log "$target: FAILED (the input is in fuzz/artifacts/$target/)"
    exit 1
  fi
  executions="$(awk '/^stat::number_of_executed_units/ { print $NF }' "$logs/$target.log")"
  coverage="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$logs/$target.log" | tail -n 1)"
  log "$target: $executions executions in $((SECONDS - start))s, $coverage, no crash"
done
