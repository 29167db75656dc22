#!/usr/bin/env bash
# Lays out kubectl-pfss as krew installs it: an archive with the binary and the README,
# and a krew plugin manifest naming the archive's sha256.
#   scripts/krew-package.sh <kubectl-pfss binary> <out dir> <version> <os/arch> <download URL of the archive>
# e.g. scripts/krew-package.sh target/release/kubectl-pfss dist v0.1.0 linux/amd64 \
#        https://github.com/riotkit-org/volume-syncing-controller/releases/download/v0.1.0/kubectl-pfss-linux-amd64.tar.gz
# Then: kubectl krew install --manifest=dist/pfss.yaml --archive=dist/kubectl-pfss-linux-amd64.tar.gz
set -euo pipefail
binary=$1 out=$2 version=$3 platform=$4 uri=$5
os=${platform%/*} arch=${platform#*/}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$binary" "$stage/kubectl-pfss"
cp "$root/README.md" "$stage/README.md"
archive="$out/kubectl-pfss-$os-$arch.tar.gz"
tar -C "$stage" -czf "$archive" kubectl-pfss README.md
sha=$(sha256sum "$archive" | cut -d' ' -f1)
sed -e "s|@VERSION@|$version|" -e "s|@OS@|$os|" -e "s|@ARCH@|$arch|" \
    -e "s|@URI@|$uri|" -e "s|@SHA256@|$sha|" "$root/plugins/pfss.yaml" > "$out/pfss.yaml"
echo "$archive"
echo "$out/pfss.yaml"
