#!/usr/bin/env bash
# Starts a throw-away Kubernetes control plane (etcd + kube-apiserver) on
# 127.0.0.1, the way controller-runtime's envtest does, and keeps it running
# until Ctrl-C / SIGTERM, when both processes are stopped and the temp dir is
# removed (set KEEP_DIR=1 to keep it).
#
# kube-apiserver flags are envtest's, plus --endpoint-reconciler-type=none: the
# "kubernetes" Service endpoint would be 127.0.0.1, which validation rejects
# (loopback), so the default reconciler only logs an error every 10s.
#
# Binaries come from tools/install-test-tools.sh's cache
# (${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}/bin); override with
# KUBE_APISERVER=... ETCD=... .
#
# Once /readyz answers 200 it prints to stdout:
#   KUBECONFIG=<path>
# (the same path is also written to <workdir>/kubeconfig.path), then waits.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
BIN_DIR="$TOOLS_DIR/bin"
KUBE_APISERVER="${KUBE_APISERVER:-$BIN_DIR/kube-apiserver}"
ETCD="${ETCD:-$BIN_DIR/etcd}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"

log() { printf '[control-plane] %s\n' "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

for b in "$KUBE_APISERVER" "$ETCD"; do
  [[ -x "$b" ]] || die "$b not found; run $SCRIPT_DIR/install-test-tools.sh first"
done
command -v openssl >/dev/null || die "openssl not found"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found (used to pick free ports)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vsc-control-plane.XXXXXX")"
PKI="$WORK/pki"
mkdir -p "$PKI"
mkdir -m 700 "$WORK/etcd"

ETCD_PID=""
APISERVER_PID=""
stop_pid() { # stop_pid PID NAME
  local pid=$1 name=$2 i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 10s; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  # If our stderr was a pipe (e.g. `| tee`) whose reader died with the same
  # Ctrl-C, a log line must not kill us before the processes are stopped.
  trap '' PIPE
  stop_pid "$APISERVER_PID" kube-apiserver
  stop_pid "$ETCD_PID" etcd
  if [[ "${KEEP_DIR:-0}" == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Three free loopback ports: etcd client, etcd peer, apiserver.
read -r ETCD_PORT PEER_PORT API_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)

log "work dir $WORK (etcd :$ETCD_PORT, kube-apiserver :$API_PORT)"

# --- certificates -----------------------------------------------------------
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=vsc-test-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

sign() { # sign NAME SUBJECT EXTFILE_CONTENT
  local name=$1 subj=$2 ext=$3
  ossl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
}
sign apiserver "/CN=kube-apiserver" \
"basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
sign admin "/O=system:masters/CN=admin" \
"basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

KUBECONFIG_FILE="$WORK/kubeconfig"
cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vsc-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: vsc-test
  context:
    cluster: vsc-test
    user: admin
current-context: vsc-test
EOF

# --- etcd -------------------------------------------------------------------
"$ETCD" \
  --name default \
  --data-dir "$WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync \
  >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!

wait_for() { # wait_for NAME PID CHECK_CMD...
  local name=$1 pid=$2 deadline=$((SECONDS + READY_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited; last log lines:"
      tail -n 30 "$WORK/$name.log" >&2 || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name not ready after ${READY_TIMEOUT}s; last log lines:"
      tail -n 30 "$WORK/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}
wait_for etcd "$ETCD_PID" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
log "etcd ready (pid $ETCD_PID)"

# --- kube-apiserver -----------------------------------------------------------
"$KUBE_APISERVER" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --cert-dir="$PKI" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=RBAC \
  --service-account-issuer="https://127.0.0.1:$API_PORT/" \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  --endpoint-reconciler-type=none \
  >"$WORK/kube-apiserver.log" 2>&1 &
APISERVER_PID=$!

readyz() {
  [[ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
      --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
      "https://127.0.0.1:$API_PORT/readyz")" == 200 ]]
}
wait_for kube-apiserver "$APISERVER_PID" readyz
log "kube-apiserver ready (pid $APISERVER_PID, $("$KUBE_APISERVER" --version))"

echo "$KUBECONFIG_FILE" >"$WORK/kubeconfig.path"
echo "KUBECONFIG=$KUBECONFIG_FILE"
log "press Ctrl-C to stop"

# Stay up until a signal arrives or one of the two processes dies.
set +e
wait -n "$ETCD_PID" "$APISERVER_PID"
rc=$?
set -e
log "a control-plane process exited (rc $rc); shutting down"
exit 1
