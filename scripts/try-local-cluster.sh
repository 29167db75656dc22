#!/usr/bin/env bash
# Try the operator on a real single-node cluster on this machine, with no cloud account:
# builds the images, brings the node up (scripts/local-cluster.sh), loads the images,
# installs the chart, starts an S3 server (rclone serve s3) on this machine, applies the
# README's PodFilesystemSync example with a small demo app, and shows the data surviving
# the Pod being replaced.
#
#   sudo bash scripts/try-local-cluster.sh        # ~2 min once the tools are built
#   sudo bash scripts/local-cluster.sh down       # tear it all down (also stops the S3 server)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export VSC_TOOLS_DIR="${VSC_TOOLS_DIR:-$HOME/.cache/volume-syncing-controller}"
export VSC_CLUSTER_DIR="${VSC_CLUSTER_DIR:-$REPO/.build/local-cluster}"
NAMESPACE=demo
say() { printf '\n== %s\n' "$*" >&2; }

bin_dir="$(bash tools/install-test-tools.sh | tail -n 1)"
export PATH="$bin_dir:$PATH"
say "building the agent and operator images"
archives="$(bash scripts/build-images.sh)"
say "starting the local cluster"
VSC_CLUSTER_IMAGES="$(echo "$archives" | tr '\n' ' ')" bash scripts/local-cluster.sh up >/dev/null
# shellcheck disable=SC1091
source "$VSC_CLUSTER_DIR/env"

say "an S3 server for the demo on 127.0.0.1:9000 and $VSC_CLUSTER_NODE_IP:9000 (data in $VSC_CLUSTER_DIR/s3)"
mkdir -p "$VSC_CLUSTER_DIR/s3/example-org-bucket"
rclone serve s3 --addr 127.0.0.1:9000 --addr "$VSC_CLUSTER_NODE_IP:9000" \
  --auth-key demo-access-key,demo-secret-key "$VSC_CLUSTER_DIR/s3" \
  >"$VSC_CLUSTER_DIR/logs/s3.log" 2>&1 &
# local-cluster.sh down stops every process recorded here.
echo $! >"$VSC_CLUSTER_DIR/pids/s3.pid"

say "helm install (images from the local containerd, no registry)"
# This cluster has no DNS for Services, but kube-proxy routes ClusterIPs: the operator's
# Service gets a fixed one, and the agents send their sync reports to it.
helm install volume-syncing-controller ./charts/volume-syncing-controller \
  --namespace volume-syncing-controller --create-namespace \
  --set service.clusterIP=10.96.0.90 --set reports.url=http://10.96.0.90:8080/report \
  --wait --timeout 180s

say "the README's PodFilesystemSync example and a demo app selected by it"
kubectl apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels: {riotkit.org/volume-syncing-controller: "true"}
---
apiVersion: v1
kind: Secret
metadata: {name: cloud-press-secret-envs, namespace: $NAMESPACE}
stringData: {REMOTE_ACCESS_KEY_ID: demo-access-key, REMOTE_SECRET_ACCESS_KEY: demo-secret-key}
EOF
awk '/^```yaml$/{block=""; inside=1; next} /^```$/{if (inside && block ~ /name: cloud-press\n/) {printf "%s", block; exit} inside=0; next} inside{block = block $0 "\n"}' README.md \
  | kubectl apply -n "$NAMESPACE" -f -
# The example's endpoint is http://minio.storage:9000: here that name is the S3 server on
# the node's network. Its remotePath reads the Pod's `subdir` annotation, and it places the
# restore before the app's own init container `some-container-name`, which lists what it
# found. The app counts visits in the volume and stops at once on SIGTERM.
kubectl apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: press, namespace: $NAMESPACE}
spec:
  selector: {matchLabels: {app: press}}
  template:
    metadata:
      labels: {app: press, my-pod-label: test, riotkit.org/volume-syncing-controller: "true"}
      annotations: {subdir: press}
    spec:
      hostNetwork: true
      hostAliases: [{ip: 127.0.0.1, hostnames: [minio.storage]}]
      securityContext: {runAsUser: 1001, runAsGroup: 1001}
      initContainers:
      - name: some-container-name
        image: localhost/vsc/busybox:local
        imagePullPolicy: Never
        command: [ls, -ln, /var/www/riotkit/wp-content]
        volumeMounts: [{name: content, mountPath: /var/www/riotkit/wp-content}]
      containers:
      - name: app
        image: localhost/vsc/busybox:local
        imagePullPolicy: Never
        command: [sh, -c, 'date >> /var/www/riotkit/wp-content/visits.txt; cat /var/www/riotkit/wp-content/visits.txt; trap "exit 0" TERM; while true; do sleep 1 & wait \$!; done']
        volumeMounts: [{name: content, mountPath: /var/www/riotkit/wp-content}]
      volumes: [{name: content, emptyDir: {}}]
EOF
kubectl -n "$NAMESPACE" wait --for=condition=Available deployment/press --timeout=180s
kubectl -n "$NAMESPACE" get pfss

say "the Pod is replaced: its final sync runs after the app stopped, the new Pod restores"
kubectl -n "$NAMESPACE" scale deployment/press --replicas=0
kubectl -n "$NAMESPACE" wait --for=delete pod -l app=press --timeout=120s
kubectl -n "$NAMESPACE" scale deployment/press --replicas=1
kubectl -n "$NAMESPACE" wait --for=condition=Available deployment/press --timeout=180s
pod="$(kubectl -n "$NAMESPACE" get pod -l app=press -o name)"
say "the new Pod's init container some-container-name found this, restored before it ran:"
kubectl -n "$NAMESPACE" logs "$pod" -c some-container-name
say "the new Pod's app (two visits: the first Pod's survived it):"
kubectl -n "$NAMESPACE" logs "$pod" -c app
say "at the remote (encrypted names: automaticEncryption is on in the example):"
find "$VSC_CLUSTER_DIR/s3/example-org-bucket" -type f >&2
say "what the Pods reported (SYNCED, LAST SYNC):"
kubectl -n "$NAMESPACE" get pfss >&2
cat >&2 <<EOF

The cluster keeps running:  source $VSC_CLUSTER_DIR/env; kubectl get pods -A
Tear down:                  sudo bash scripts/local-cluster.sh down
EOF
