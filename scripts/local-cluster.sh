#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, for trying the operator and for the
# real-node tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy (iptables), containerd + runc and the CNI bridge. No registry, no container
# engine, no internet: images come from OCI archives imported into containerd.
#
#   sudo bash scripts/local-cluster.sh up       # prints KUBECONFIG=<path> on stdout
#   sudo bash scripts/local-cluster.sh down     # stops what `up` started, undoes host changes
#   bash scripts/local-cluster.sh status
#
# Environment:
#   VSC_CLUSTER_DIR     state directory (default: .build/local-cluster in the repository)
#   VSC_TOOLS_DIR       tool cache of tools/install-test-tools.sh (kube binaries)
#   VSC_CLUSTER_IMAGES  OCI archives to import at start (space-separated), e.g. the output
#                       of scripts/build-images.sh
#   VSC_NODE_NAME       node name (default: vsc-node)
#
# What `up` changes on the host, and `down` restores (compared against a snapshot taken
# before `up`; `down` reports any difference): sysctls set by the kubelet, the CNI bridge
# (net.ipv4.ip_forward) and kube-proxy; iptables chains of the kubelet, kube-proxy and the
# CNI plugins; the cni0 link; mounts under the state directory; kubepods cgroups;
# /var/log/containers, /run/netns, /var/lib/cni when they did not exist. `down` stops only
# the processes whose PIDs `up` recorded (and the containerd shims of its own containerd),
# and works after any of them was killed with SIGKILL.
#
# Traffic stays on this machine: the API server listens on the node's own address, Pods
# live in network namespaces on the cni0 bridge (10.88.0.0/16), Service ClusterIPs
# (10.96.0.0/16) are routed by kube-proxy on this machine, and Pods' DNS points at their
# own loopback (there is no cluster DNS), so no lookup leaves the machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${VSC_CLUSTER_DIR:-$REPO/.build/local-cluster}"
TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
BIN_DIR="$TOOLS_DIR/bin"
NODE_NAME="${VSC_NODE_NAME:-vsc-node}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
CNI_NETWORK=vsc-local
PKI="$STATE/pki" RUN="$STATE/run" LOGS="$STATE/logs" PIDS="$STATE/pids"
# Sysctls the kubelet, the CNI bridge plugin and kube-proxy may write.
SAVED_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
  net.netfilter.nf_conntrack_max)

T0=$SECONDS
log() { printf '[local-cluster %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

# ---- preconditions --------------------------------------------------------------------

require_root_and_cgroups() {
  [[ $EUID -eq 0 ]] || die "must run as root: containerd, runc and the kubelet create namespaces, mounts and cgroups (run with sudo)"
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    local controllers
    controllers="$(cat /sys/fs/cgroup/cgroup.controllers)"
    for c in cpu memory pids; do
      [[ " $controllers " == *" $c "* ]] || die "cgroup v2 without the '$c' controller: the kubelet cannot limit Pods here"
    done
  else
    for c in cpu memory pids; do
      [[ -d /sys/fs/cgroup/$c ]] || die "no usable cgroup hierarchy: /sys/fs/cgroup/$c is missing (mount cgroup v1 controllers or use cgroup v2)"
    done
  fi
}

require_tools() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [[ -x "$BIN_DIR/$b" ]] || die "$BIN_DIR/$b not found: run 'bash tools/install-test-tools.sh' first"
  done
}

# Debian packages of the node, installed only when missing.
install_node_packages() {
  local missing=() policy_created=0
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
  command -v gcc >/dev/null || missing+=(gcc)
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || missing+=(libc6-dev)
  for c in openssl curl python3 ip; do command -v $c >/dev/null || die "$c not found"; done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  # There is no init system to start containerd.service: keep dpkg from trying.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_created=1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
  return 0
}

# ---- host snapshot ----------------------------------------------------------------------

# host_state: what `down` must give back, in a comparable form (no counters, no PIDs).
host_state() {
  local s
  for s in "${SAVED_SYSCTLS[@]}"; do echo "sysctl $s=$(sysctl -n "$s" 2>/dev/null || echo absent)"; done
  # Rules and chains; an empty table whose built-in chains accept is the same as no table
  # (iptables-nft cannot remove a table once a program created it).
  for s in iptables ip6tables; do
    { $s-save 2>/dev/null || true; } | sed -e 's/\[[0-9]*:[0-9]*\]//' \
      | { grep -Ev '^(#|\*|COMMIT|:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ACCEPT)' || true; } | sed "s/^/$s /"
  done
  ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
  awk '{print "mount " $2}' /proc/self/mounts | sort
  for s in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /var/log/containers /run/netns /var/lib/cni; do
    [[ -e $s ]] && echo "path $s"
  done
  return 0
}

# ---- processes --------------------------------------------------------------------------

running() { kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
alive() { [[ -f "$PIDS/$1.pid" ]] && running "$(cat "$PIDS/$1.pid")"; }
start_bg() { # start_bg NAME CMD...
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}
wait_for() { # wait_for NAME CHECK_CMD...
  local name=$1 deadline=$((SECONDS + READY_TIMEOUT)); shift
  until "$@" >/dev/null 2>&1; do
    alive "$name" || { tail -n 30 "$LOGS/$name.log" >&2; die "$name exited (log: $LOGS/$name.log)"; }
    ((SECONDS < deadline)) || { tail -n 30 "$LOGS/$name.log" >&2; die "$name not ready after ${READY_TIMEOUT}s"; }
    sleep 0.5
  done
}
stop() { # stop NAME [TIMEOUT_S]
  local name=$1 t=${2:-15} pid i
  [[ -f "$PIDS/$name.pid" ]] || return 0
  pid=$(cat "$PIDS/$name.pid")
  if alive "$name"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 5; i++)); do alive "$name" || break; sleep 0.2; done
    if alive "$name"; then log "$name still running after ${t}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  fi
  rm -f "$PIDS/$name.pid"
}

# ---- certificates and kubeconfigs ---------------------------------------------------------

ossl() { openssl "$@" 2>>"$LOGS/openssl.log"; }
sign() { # sign NAME SUBJECT EKU [SAN]
  ossl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr"
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$3"; [[ -z "${4:-}" ]] || echo "subjectAltName=$4"; } >"$PKI/$1.ext"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt"
}
kubeconfig() { # kubeconfig USER: $STATE/USER.kubeconfig with that client certificate
  cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://$NODE_IP:$API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$PKI/$1.crt", client-key: "$PKI/$1.key"}
contexts:
- name: local
  context: {cluster: local, user: $1}
current-context: local
EOF
}
make_pki() {
  ossl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=vsc-local-cluster-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  sign apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign kubelet-serving "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  local user subject
  for user in admin:/O=system:masters/CN=admin apiserver-kubelet-client:/O=system:masters/CN=kube-apiserver-kubelet-client \
    kubelet:/O=system:nodes/CN=system:node:$NODE_NAME kube-proxy:/CN=system:kube-proxy \
    kube-scheduler:/CN=system:kube-scheduler kube-controller-manager:/CN=system:kube-controller-manager; do
    subject="${user#*:}" user="${user%%:*}"
    sign "$user" "$subject" clientAuth
    kubeconfig "$user"
  done
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
  ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
}

# ---- components ---------------------------------------------------------------------------

free_ports() { # free_ports N: N free TCP ports on all addresses
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("0.0.0.0", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
}

start_control_plane() {
  start_bg etcd "$BIN_DIR/etcd" --name default --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  # --enable-aggregator-routing: the API server calls webhooks at their Service's endpoint
  # addresses (Pod IPs on cni0), not at the ClusterIP.
  start_bg kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer="https://kubernetes.default.svc" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --enable-aggregator-routing=true \
    --allow-privileged=true
  wait_for kube-apiserver kubectl_admin get --raw /readyz
  start_bg kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig="$STATE/kube-controller-manager.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key"
  start_bg kube-scheduler "$BIN_DIR/kube-scheduler" \
    --kubeconfig="$STATE/kube-scheduler.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT"
  log "control plane up ($("$BIN_DIR/kube-apiserver" --version))"
}
kubectl_admin() { "$BIN_DIR/kubectl" --kubeconfig "$STATE/admin.kubeconfig" --request-timeout=10s "$@"; }

write_containerd_config() {
  # Without CAP_SYS_RESOURCE (some VMs' bounding set lacks it) runc cannot lower
  # oom_score_adj and every sandbox fails with "can't get final child's PID from pipe".
  local restrict_oom=false
  (( (0x$(awk '/^CapEff/{print $2}' /proc/self/status) >> 24) & 1 )) || restrict_oom=true
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$RUN/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = $restrict_oom
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
EOF
  cat >"$STATE/cni/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
}

ctr_local() { ctr --address "$RUN/containerd.sock" -n k8s.io --timeout 30s "$@"; }

# The sandbox ("pause") image is Kubernetes' own pause.c, from the k8s.io/kubernetes module
# the tools were built from; the demo image is Debian's static busybox.
build_node_images() {
  local img="$STATE/images" pause_c
  pause_c="$(cd "$REPO/tools/kube-bins" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null)/build/pause/linux/pause.c"
  [[ -f $pause_c ]] || die "pause.c not found at $pause_c: run 'bash tools/install-test-tools.sh' (it downloads the k8s.io/kubernetes module)"
  mkdir -p "$img/pause/root" "$img/busybox/root/bin" "$img/busybox/root/etc" "$img/busybox/root/tmp"
  gcc -Os -static -DVERSION=v3.10-vsc -o "$img/pause/root/pause" "$pause_c"
  cp /bin/busybox "$img/busybox/root/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$img/busybox/root/bin/$applet"
  done
  chmod 1777 "$img/busybox/root/tmp"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$img/busybox/root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$img/busybox/root/etc/group"
  python3 "$REPO/tools/oci-image.py" --name registry.k8s.io/pause:3.10 --output "$img/pause.oci.tar" \
    --entrypoint '["/pause"]' "$img/pause/root" >&2
  python3 "$REPO/tools/oci-image.py" --name localhost/vsc/busybox:local --output "$img/busybox.oci.tar" \
    --cmd '["sh"]' --env PATH=/bin "$img/busybox/root" >&2
  echo "$img/pause.oci.tar $img/busybox.oci.tar"
}

start_containerd() {
  write_containerd_config
  start_bg containerd containerd --config "$STATE/containerd/config.toml"
  wait_for containerd ctr_local version
  local archive
  for archive in $(build_node_images) ${VSC_CLUSTER_IMAGES:-}; do
    [[ -f $archive ]] || die "VSC_CLUSTER_IMAGES: $archive is not a file"
    ctr_local images import "$archive" >&2
  done
  log "containerd up ($(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'))"
}

start_kubelet() {
  # Pods resolve names through their own loopback: no DNS query leaves the machine.
  echo "nameserver 127.0.0.1" >"$STATE/resolv.conf"
  cat >"$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: $PKI/ca.crt}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$RUN/containerd.sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: $STATE/pod-logs
resolvConf: $STATE/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
syncFrequency: 10s
EOF
  start_bg kubelet "$BIN_DIR/kubelet" --config="$STATE/kubelet-config.yaml" \
    --kubeconfig="$STATE/kubelet.kubeconfig" --root-dir="$STATE/kubelet" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  wait_for kubelet curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"
  wait_for kubelet kubectl_admin wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  log "kubelet up, node $NODE_NAME Ready ($("$BIN_DIR/kubelet" --version))"
}

# kube-proxy routes ClusterIPs on this machine. masqueradeAll: a Pod reaching a Service
# backed by a Pod on the same bridge gets its reply through the host, not around it.
# Conntrack sizes are left alone (0) so kube-proxy writes no conntrack sysctl.
start_kube_proxy() {
  cat >"$STATE/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
iptables: {masqueradeAll: true, localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start_bg kube-proxy "$BIN_DIR/kube-proxy" --config="$STATE/kube-proxy-config.yaml"
  wait_for kube-proxy curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  log "kube-proxy up"
}

wait_for_default_service_account() {
  wait_for kube-controller-manager kubectl_admin get serviceaccount default -n default
}

# ---- up / down ----------------------------------------------------------------------------

up() {
  require_root_and_cgroups
  require_tools
  install_node_packages
  if [[ -d "$PIDS" ]]; then
    local f
    for f in "$PIDS"/*.pid; do
      [[ -f $f ]] && running "$(cat "$f")" && die "already running ($f): run '$0 down' first"
    done
    log "a previous run left $STATE: cleaning up first"
    down
  fi
  rm -rf "$STATE"
  mkdir -p "$PKI" "$RUN" "$LOGS" "$PIDS" "$STATE/containerd/root" "$STATE/containerd/state" \
    "$STATE/kubelet" "$STATE/pod-logs" "$STATE/cni" "$STATE/images"
  mkdir -m 700 "$STATE/etcd"
  host_state >"$STATE/host-before"
  local route
  route="$(ip -4 route get 1.1.1.1 2>/dev/null || true)"  # asks the routing table; sends nothing
  NODE_IP="${VSC_NODE_IP:-$(awk '{for(i=1;i<=NF;i++) if($i=="src"){print $(i+1); exit}}' <<<"$route")}"
  [[ -n "$NODE_IP" && "$NODE_IP" != 127.* ]] || die "no non-loopback address for the node (set VSC_NODE_IP): the kubelet refuses a loopback node IP"
  read -r ETCD_PORT PEER_PORT API_PORT KCM_PORT SCHEDULER_PORT KUBELET_PORT KUBELET_HEALTHZ_PORT \
    PROXY_HEALTHZ_PORT PROXY_METRICS_PORT < <(free_ports 9)
  log "state $STATE, node $NODE_NAME at $NODE_IP, API server :$API_PORT"
  make_pki
  start_control_plane
  start_containerd
  start_kubelet
  start_kube_proxy
  wait_for_default_service_account
  cat >"$STATE/env" <<EOF
export KUBECONFIG=$STATE/admin.kubeconfig
export VSC_CLUSTER_NODE=$NODE_NAME
export VSC_CLUSTER_NODE_IP=$NODE_IP
export CONTAINERD_ADDRESS=$RUN/containerd.sock
export CONTAINERD_NAMESPACE=k8s.io
EOF
  log "up in $((SECONDS - T0))s: 'source $STATE/env' then kubectl get nodes; stop with '$0 down'"
  echo "KUBECONFIG=$STATE/admin.kubeconfig"
}

delete_all_pods() {
  alive kubelet && alive kube-apiserver || return 0
  log "deleting all Pods"
  kubectl_admin delete deployments,statefulsets,daemonsets,replicasets,jobs --all --all-namespaces --wait=false >/dev/null 2>&1 || true
  kubectl_admin delete pods --all --all-namespaces --wait=false --grace-period=5 >/dev/null 2>&1 || true
  local i pods
  for ((i = 0; i < 60; i++)); do
    pods="$(kubectl_admin get pods -A -o name 2>/dev/null || true)"
    [[ -z "$pods" ]] && return 0
    sleep 1
  done
  log "Pods left after 60s: $pods"
}

remove_containers() {
  alive containerd || return 0
  local t c
  for t in $(ctr_local tasks ls -q 2>/dev/null); do ctr_local tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  sleep 1
  for t in $(ctr_local tasks ls -q 2>/dev/null); do ctr_local tasks delete -f "$t" >/dev/null 2>&1 || true; done
  for c in $(ctr_local containers ls -q 2>/dev/null); do ctr_local containers rm "$c" >/dev/null 2>&1 || true; done
}

# Shims of our containerd, after it is gone: by the PIDs in its state directory, and (a
# sandbox's shim outlives its deleted bundle) by the socket of ours their command line names.
kill_leftover_shims() {
  local f pid
  for f in "$STATE"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid "$STATE"/containerd/state/io.containerd.runtime.v2.task/*/*/init.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    [[ -n "$pid" ]] && running "$pid" && kill -KILL "$pid" 2>/dev/null && log "killed leftover pid $pid ($f)"
  done
  for pid in $(processes_of_this_cluster); do
    kill -KILL "$pid" 2>/dev/null && log "killed leftover shim $pid"
  done
  return 0
}

# PIDs of processes whose command line names this cluster's state directory.
processes_of_this_cluster() {
  local cmdline pid
  for cmdline in /proc/[0-9]*/cmdline; do
    pid="${cmdline#/proc/}" pid="${pid%/cmdline}"
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    [[ "$(tr '\0' ' ' <"$cmdline" 2>/dev/null)" == *"$STATE/"* ]] && echo "$pid"
  done
  return 0
}

restore_host() {
  local m d k v line
  # Overlay roots, shm, netns and volume mounts of our Pods, deepest first.
  for m in $(awk -v state="$STATE/" 'index($2, state) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  for d in $(find /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods -depth -type d 2>/dev/null); do rmdir "$d" 2>/dev/null || true; done
  [[ -x "$BIN_DIR/kube-proxy" ]] && "$BIN_DIR/kube-proxy" --cleanup >>"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
  remove_cni_rules
  remove_kubelet_chains
  ip link show cni0 >/dev/null 2>&1 && ! grep -qx 'link cni0' "$STATE/host-before" && ip link del cni0
  rm -rf "/var/lib/cni/networks/$CNI_NETWORK" "/var/lib/cni/results"
  [[ -f "$STATE/host-before" ]] || return 0
  for line in $(grep '^sysctl ' "$STATE/host-before" | cut -d' ' -f2); do
    k="${line%%=*}" v="${line#*=}"
    [[ "$v" == absent || "$(sysctl -n "$k" 2>/dev/null)" == "$v" ]] || sysctl -q -w "$k=$v" || true
  done
  for d in /var/log/containers /run/netns /var/lib/cni; do
    [[ -e $d ]] && ! grep -qx "path $d" "$STATE/host-before" && rm -rf "$d"
  done
  return 0
}

# The CNI plugins' NAT chains carry the network name in a comment.
remove_cni_rules() {
  local rules chains rule chain
  rules="$(iptables-save -t nat 2>/dev/null || true)"
  [[ "$rules" == *"name: \\\"$CNI_NETWORK\\\""* ]] || return 0
  chains="$(grep -F "name: \\\"$CNI_NETWORK\\\"" <<<"$rules" | awk '$1=="-A" && $2 ~ /^CNI-/ {print $2}' | sort -u)"
  grep -F "name: \\\"$CNI_NETWORK\\\"" <<<"$rules" | grep '^-A POSTROUTING' | sed 's/^-A/-D/' | while read -r rule; do
    eval "iptables -t nat $rule" || true
  done
  for chain in $chains; do iptables -t nat -F "$chain" 2>/dev/null || true; iptables -t nat -X "$chain" 2>/dev/null || true; done
  # portmap's chains
  for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
    grep -q ":$chain " "$STATE/host-before" && continue
    iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null || true
    iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null || true
    iptables -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ 2>/dev/null || true
    iptables -t nat -F "$chain" 2>/dev/null || true; iptables -t nat -X "$chain" 2>/dev/null || true
  done
  # the bridge plugin's FORWARD rules (CNI-FORWARD chain)
  if ! grep -q ':CNI-FORWARD ' "$STATE/host-before"; then
    iptables -t filter -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
    iptables -t filter -F CNI-FORWARD 2>/dev/null || true; iptables -t filter -X CNI-FORWARD 2>/dev/null || true
  fi
}

# The kubelet's utility chains, unless they existed before `up`.
remove_kubelet_chains() {
  grep -q ':KUBE-FIREWALL ' "$STATE/host-before" 2>/dev/null && return 0
  local ipt table
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    $ipt -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null || true
    $ipt -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
    $ipt -t filter -F KUBE-FIREWALL 2>/dev/null || true; $ipt -t filter -X KUBE-FIREWALL 2>/dev/null || true
    for table in filter nat mangle; do $ipt -t $table -X KUBE-KUBELET-CANARY 2>/dev/null || true; done
    $ipt -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
}

down() {
  [[ -d "$STATE" ]] || { log "nothing to do: $STATE does not exist"; return 0; }
  [[ $EUID -eq 0 ]] || die "must run as root"
  delete_all_pods
  stop kube-proxy
  stop kubelet
  remove_containers
  stop containerd
  kill_leftover_shims
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  # Processes others recorded beside ours (scripts/try-local-cluster.sh's S3 server).
  local pid_file
  for pid_file in "$PIDS"/*.pid; do
    [[ -f $pid_file ]] && stop "$(basename "$pid_file" .pid)"
  done
  restore_host
  report_host_differences
}

report_host_differences() {
  [[ -f "$STATE/host-before" ]] || { rm -rf "$STATE"; return 0; }
  local differences
  differences="$(diff <(sort "$STATE/host-before") <(host_state | sort) || true)"
  local left
  left="$(processes_of_this_cluster)"
  [[ -z "$left" ]] || differences+=$'\n'"processes of this cluster still running: ${left//$'\n'/ }"
  if [[ -n "$differences" ]]; then
    log "the host differs from before 'up' (state kept in $STATE):"
    printf '%s\n' "$differences" >&2
    return 1
  fi
  rm -rf "$STATE"
  log "down in $((SECONDS - T0))s; the host is as it was before 'up'"
}

status() {
  local name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
    if alive "$name"; then echo "$name running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name not running"; fi
  done
  [[ -f "$STATE/env" ]] && echo "environment: source $STATE/env"
  return 0
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
