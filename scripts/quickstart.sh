#!/usr/bin/env bash
# The main job on an embedded default: no cloud account, the "remote" is a local directory.
# Builds the agent, uploads examples/quickstart/data with sync-to-remote, restores it with
# remote-to-local-sync into a new directory, and shows that both trees are identical.
#
#   bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export VSC_TOOLS_ONLY="rclone"
bin_dir="$(bash tools/install-test-tools.sh | tail -n 1)"
export PATH="$bin_dir:$PATH"
cargo build --release -p vsc-agent >&2
agent="${CARGO_TARGET_DIR:-target}/release/volume-syncing-controller"

work="$PWD/.build/quickstart"
rm -rf "$work" && mkdir -p "$work"

# The whole rclone configuration is environment variables: [remote] type = local.
export REMOTE_TYPE=local
export VSC_PID_PATH="$work/agent.pid"

echo "== sync-to-remote: examples/quickstart/data -> $work/remote" >&2
"$agent" sync-to-remote -s examples/quickstart/data -d "$work/remote"

echo "== remote-to-local-sync: $work/remote -> $work/restored" >&2
"$agent" remote-to-local-sync -s "$work/remote" -d "$work/restored"

diff -r examples/quickstart/data "$work/restored"
echo "== restored tree is identical to the source:" >&2
find "$work/restored" -type f | sort
