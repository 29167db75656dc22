#!/usr/bin/env bash
# The main job on an embedded default: no cloud account, the "remote" is a local directory.
# Builds the agent, uploads a copy of examples/quickstart/data with sync-to-remote, restores
# it with remote-to-local-sync into a new directory, and shows that both trees are identical
# (each holds the agent's local record, .volume-syncing-controller.local.json, which is
# never uploaded: the copy keeps it out of the checkout).
# Fails if the agent logs anything at ERROR or WARN level: a normal run has nothing to warn
# about.
#
#   bash scripts/quickstart.sh
#
# Environment: VSC_AGENT runs that agent binary instead of building the release one;
# QUICKSTART_DIR is the work directory (default .build/quickstart).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export VSC_TOOLS_ONLY="rclone"
tools_out="$(bash tools/install-test-tools.sh)"
bin_dir="${tools_out##*$'\n'}"
export PATH="$bin_dir:$PATH"
agent="${VSC_AGENT:-}"
if [[ -z "$agent" ]]; then
  cargo build --release -p vsc-agent >&2
  agent="${CARGO_TARGET_DIR:-target}/release/volume-syncing-controller"
fi

work="${QUICKSTART_DIR:-$PWD/.build/quickstart}"
rm -rf "$work" && mkdir -p "$work"

# The whole rclone configuration is environment variables: [remote] type = local.
export REMOTE_TYPE=local
export VSC_PID_PATH="$work/agent.pid"

# Runs the agent with its log shown, and fails on an ERROR or WARN line in it.
agent() {
  local log="$work/agent.log"
  "$agent" "$@" 2>"$log" || { cat "$log" >&2; return 1; }
  cat "$log" >&2
  if grep -E '(^|[[:space:]])(ERROR|WARN)([[:space:]]|:)' "$log" >/dev/null; then
    echo "quickstart: the agent logged at ERROR or WARN level on a normal run (above)" >&2
    return 1
  fi
}

cp -a examples/quickstart/data "$work/data"
echo "== sync-to-remote: $work/data (examples/quickstart/data) -> $work/remote" >&2
agent sync-to-remote -s "$work/data" -d "$work/remote"

echo "== remote-to-local-sync: $work/remote -> $work/restored" >&2
agent remote-to-local-sync -s "$work/remote" -d "$work/restored"

record=.volume-syncing-controller.local.json
if [[ -e "$work/remote/$record" ]]; then
  echo "quickstart: the agent's local record was uploaded" >&2
  exit 1
fi
diff -r --exclude="$record" examples/quickstart/data "$work/restored"
echo "== restored tree is identical to the source:" >&2
find "$work/restored" -type f ! -name "$record" | sort
