#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, run from binaries the way
# hack/local-up-cluster.sh runs one from source: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (with runc), a kubelet and
# kube-proxy (iptables), a bridge CNI, and a MinIO (region eu-west-2) that the pods reach
# through the node. Root only (the kubelet, containerd and the CNI need it).
#
#   tests/e2e/node/cluster.sh up   [--dir DIR]   start it; writes DIR/env
#   tests/e2e/node/cluster.sh down [--dir DIR]   stop everything, unmount, remove DIR's state
#   tests/e2e/node/cluster.sh import ARCHIVE...  import docker/OCI archives into containerd (k8s.io)
#
# DIR (default target/e2e-node) holds every file: certificates, etcd's data, containerd's
# root, state and socket, the kubelet's root, CNI configuration and IPAM state, MinIO's
# data, logs, and `pids`. Ports are chosen free at start-up (like tests/servers/up.sh), so
# this runs beside `make test`. What is not under DIR, because the programs fix it: the
# bridge `evid0` (10.213.0.1/24, the pods' network; 10.214.0.0/24 is the service range),
# kube-proxy's iptables chains, the pods' network namespaces in /var/run/netns, their
# logs in /var/log/pods, and cgroups under /sys/fs/cgroup/*/kubepods. `down` removes
# each of those (only ours: namespaces whose address is in 10.213.0.0/24, the kubepods
# cgroups, which no other kubelet here uses), and `up` runs `down` first, so a failed or
# killed run is cleaned up by the next one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
servers="$root/tests/servers"
dir="$root/target/e2e-node"
cmd="${1:-}"; shift || true
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

# The node's network: fixed, so that `down` can find what a crashed run left.
bridge=evid0
node_ip=10.213.0.1
pod_cidr=10.213.0.0/24
service_cidr=10.214.0.0/24
kubernetes_svc_ip=10.214.0.1
node_name=evidence-e2e-node
pause_image="localhost/evidence-e2e/pause"

log() { printf '[node] %s\n' "$*" >&2; }
# shellcheck source=../../servers/versions.env
. "$servers/versions.env"

free_port() { # on the node's address (the bridge exists by then)
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()' "${1:-127.0.0.1}"
}

wait_for() { # description, timeout seconds, command...
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" > /dev/null 2>&1; do
    if (( SECONDS >= deadline )); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.3
  done
}

start() { # name, command...: background, logs to DIR/logs/NAME.log, pid recorded
  local name="$1"; shift
  "$@" >> "$dir/logs/$name.log" 2>&1 &
  echo "$name $!" >> "$dir/pids"
  log "started $name (pid $!, log $dir/logs/$name.log)"
}

alive() { # name: the recorded process still runs
  local pid
  pid="$(awk -v n="$1" '$1 == n { print $2 }' "$dir/pids" | tail -n 1)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

need_root_tools() {
  local missing=()
  for t in containerd runc buildah iptables ctr ip openssl; do command -v "$t" >/dev/null || missing+=("$t"); done
  if (( ${#missing[@]} )); then
    log "installing the distribution's containerd, runc, buildah, iptables (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc buildah iptables iproute2 >/dev/null
  fi
}

# --- certificates --------------------------------------------------------------
pki_cert() { # name, subject, ext (or ""): a key and a certificate signed by the CA
  local name="$1" subj="$2" ext="$3" pki="$dir/pki"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
}

kubeconfig() { # name (its client cert), file
  cat > "$2" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: e2e-node
  cluster:
    server: https://$node_ip:$api_port
    certificate-authority: $dir/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $dir/pki/$1.crt
    client-key: $dir/pki/$1.key
contexts:
- name: e2e-node
  context: {cluster: e2e-node, user: $1}
current-context: e2e-node
KCFG
}

up() {
  [[ $EUID -eq 0 ]] || { log "the node needs root (kubelet, containerd, CNI)"; exit 1; }
  need_root_tools
  down >/dev/null 2>&1 || true
  mkdir -p "$dir"/{logs,pki,cni/net.d,cni/ipam,kubelet,containerd,minio}
  : > "$dir/pids"
  dir="$(cd "$dir" && pwd)"
  local t0=$SECONDS

  local tools k v
  tools="$("$servers/install.sh" etcd kube-apiserver kubectl minio kubelet kube-controller-manager \
    kube-scheduler kube-proxy pause cni-plugins)"
  # (tool=path lines become bin_kube_apiserver=..., bin_cni_plugins=...)
  while IFS== read -r k v; do printf -v "bin_${k//-/_}" '%s' "$v"; done <<< "$tools"
  log "tools ready ($((SECONDS - t0))s)"

  # the pods' bridge, made here so that the API server and MinIO can bind its address
  ip link add "$bridge" type bridge
  ip addr add "$node_ip/24" dev "$bridge"
  ip link set "$bridge" up
  sysctl -qw net.ipv4.ip_forward=1

  # --- certificates
  local pki="$dir/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=evidence-e2e-node-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  pki_cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$node_ip,IP:$kubernetes_svc_ip,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
  pki_cert kubelet-serving "/CN=$node_name" "subjectAltName=IP:$node_ip,DNS:$node_name
extendedKeyUsage=serverAuth"
  local client="extendedKeyUsage=clientAuth"
  pki_cert admin "/O=system:masters/CN=e2e-admin" "$client"
  pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  pki_cert kubelet "/O=system:nodes/CN=system:node:$node_name" "$client"
  pki_cert controller-manager "/CN=system:kube-controller-manager" "$client"
  pki_cert scheduler "/CN=system:kube-scheduler" "$client"
  pki_cert kube-proxy "/CN=system:kube-proxy" "$client"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

  # --- etcd
  local etcd_port etcd_peer
  etcd_port="$(free_port)"; etcd_peer="$(free_port)"
  start etcd "$bin_etcd" --name e2e-node --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "e2e-node=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync
  wait_for "etcd" 30 curl -sf "http://127.0.0.1:$etcd_port/health"

  # --- kube-apiserver, on the node's address (the pods reach it there through the
  # kubernetes Service, which kube-proxy points at it)
  api_port="$(free_port "$node_ip")"
  start kube-apiserver "$bin_kube_apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$node_ip" --secure-port "$api_port" --advertise-address "$node_ip" \
    --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "$service_cidr" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --profiling=false --v=1
  kubeconfig admin "$dir/kubeconfig"
  for c in controller-manager scheduler kubelet kube-proxy; do kubeconfig "$c" "$dir/$c.kubeconfig"; done
  local kubectl=("$bin_kubectl" --kubeconfig "$dir/kubeconfig")
  wait_for "kube-apiserver" 120 "${kubectl[@]}" get --raw /readyz
  log "kube-apiserver ready on https://$node_ip:$api_port ($((SECONDS - t0))s)"

  # --- kube-controller-manager and kube-scheduler
  start kube-controller-manager "$bin_kube_controller_manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true --service-cluster-ip-range "$service_cidr" \
    --cluster-name e2e-node --v=1
  start kube-scheduler "$bin_kube_scheduler" \
    --kubeconfig "$dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false --v=1

  # --- containerd (its own root, state, socket and configuration)
  local ctrd="$dir/containerd"
  sock="$ctrd/containerd.sock"
  cat > "$ctrd/config.toml" <<TOML
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image:$PAUSE_VERSION"
  # This machine's root lacks CAP_SYS_RESOURCE, so no process may lower an OOM score:
  # the sandbox's -998 fails in runc ("can't get final child's PID from pipe: EOF").
  # Clamp every container's score to containerd's own (as rootless containerd does).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$ctrd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$bin_cni_plugins"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
TOML
  cat > "$dir/cni/net.d/10-evidence-e2e.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "evidence-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
              "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "10.213.0.10", "rangeEnd": "10.213.0.250", "gateway": "$node_ip"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  start containerd containerd --config "$ctrd/config.toml"
  wait_for "containerd" 30 ctr -a "$sock" version

  # --- the pod sandbox image: upstream pause.c, FROM scratch
  build_pause_image
  import "$dir/pause.tar"

  # --- kubelet
  local kubelet_port kubelet_healthz
  kubelet_port="$(free_port "$node_ip")"; kubelet_healthz="$(free_port)"
  cat > "$dir/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# this machine has cgroups v1: kubelet 1.35 refuses them unless told
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$sock
imageServiceEndpoint: unix://$sock
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
registerNode: true
# no image is ever pulled (nothing to pull from); never collect the imported ones
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%"}
serializeImagePulls: false
# kube-proxy owns the iptables rules of this node; the kubelet adds none of its own
makeIPTablesUtilChains: false
shutdownGracePeriod: 0s
YAML
  start kubelet "$bin_kubelet" --config "$dir/kubelet/config.yaml" \
    --kubeconfig "$dir/kubelet.kubeconfig" --root-dir "$dir/kubelet/root" \
    --hostname-override "$node_name" --node-ip "$node_ip" --v=1

  # --- kube-proxy (iptables): the kubernetes Service and the operator's metrics Service
  cat > "$dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
hostnameOverride: $node_name
bindAddress: $node_ip
metricsBindAddress: 127.0.0.1:$(free_port)
healthzBindAddress: 127.0.0.1:$(free_port)
conntrack: {maxPerCore: 0}
YAML
  start kube-proxy "$bin_kube_proxy" --config "$dir/kube-proxy.yaml" --v=1

  # --- MinIO on the node's address (pods reach it at http://$node_ip:PORT)
  local minio_port s3_user=evidence-e2e s3_pass
  s3_pass="$(openssl rand -hex 16)"
  minio_port="$(free_port "$node_ip")"
  MINIO_ROOT_USER="$s3_user" MINIO_ROOT_PASSWORD="$s3_pass" MINIO_SITE_REGION=eu-west-2 \
    MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 \
    start minio "$bin_minio" server --quiet --address "$node_ip:$minio_port" "$dir/minio/data"

  wait_for "node $node_name Ready" 120 "${kubectl[@]}" wait node "$node_name" --for=condition=Ready --timeout=2s
  wait_for "MinIO" 60 curl -sf "http://$node_ip:$minio_port/minio/health/ready"
  wait_for "the default ServiceAccount" 60 "${kubectl[@]}" -n default get serviceaccount default
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy minio; do
    alive "$p" || { log "$p exited (log $dir/logs/$p.log)"; tail -n 20 "$dir/logs/$p.log" >&2; exit 1; }
  done

  cat > "$dir/env" <<ENV
# written by tests/e2e/node/cluster.sh up; stop with tests/e2e/node/cluster.sh down --dir $dir
export KUBECONFIG=$dir/kubeconfig
export E2E_NODE_DIR=$dir
export E2E_NODE_IP=$node_ip
export E2E_NODE_NAME=$node_name
export E2E_CONTAINERD_SOCK=$sock
export E2E_KUBECTL=$bin_kubectl
export E2E_S3_ENDPOINT=http://$node_ip:$minio_port
export E2E_S3_ACCESS_KEY=$s3_user
export E2E_S3_SECRET_KEY=$s3_pass
export E2E_S3_REGION=eu-west-2
ENV
  log "node $node_name Ready: $("${kubectl[@]}" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'), $(containerd --version | awk '{print $3}') containerd, $(runc --version | head -n 1); up in $((SECONDS - t0))s; env in $dir/env"
}

build_pause_image() { # a FROM scratch image of the static pause binary, as a docker archive
  local b="$dir/pause-build"
  rm -rf "$b" && mkdir -p "$b/rootfs"
  cp "$bin_pause" "$b/rootfs/pause"
  printf 'FROM scratch\nCOPY rootfs/ /\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$b/Containerfile"
  local storage=(--root "$b/storage" --runroot "$b/runroot" --storage-driver vfs)
  buildah "${storage[@]}" bud --quiet --layers=false -f "$b/Containerfile" -t "$pause_image:$PAUSE_VERSION" "$b" >/dev/null
  buildah "${storage[@]}" push --quiet "$pause_image:$PAUSE_VERSION" "docker-archive:$dir/pause.tar:$pause_image:$PAUSE_VERSION"
  buildah "${storage[@]}" rmi -a -f >/dev/null 2>&1 || true
  rm -rf "$b"
}

import() { # archives: into containerd's k8s.io namespace (what the kubelet sees)
  local a
  sock="${sock:-$dir/containerd/containerd.sock}"
  for a in "$@"; do
    ctr -a "$sock" -n k8s.io images import --no-unpack=false "$a" >&2
  done
}

# --- tear-down -------------------------------------------------------------------
kill_pids() { # signal pid...: signal, then wait (deadline 20 s) until they are gone
  local sig="$1" pid deadline; shift
  for pid in "$@"; do kill "-$sig" "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 20))
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
}

down() {
  local pids=() name pid
  # the kubelet first, so that it starts no container while the rest goes
  if [[ -f "$dir/pids" ]]; then
    pid="$(awk '$1 == "kubelet" { print $2 }' "$dir/pids" | tail -n 1)"
    [[ -n "$pid" ]] && kill_pids TERM "$pid"
  fi
  # every process of every pod (the kubelet's cgroups), then the cgroups themselves
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$cg" ]] || continue
    # shellcheck disable=SC2046
    kill -KILL $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u) 2>/dev/null || true
  done
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  # containerd's shims (they outlive containerd by design): those started for our socket
  local sockpath="$dir/containerd/containerd.sock"
  for pid in $(grep -lsF -- "$sockpath" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [[ "$pid" != "$$" ]] && pids+=("$pid")
  done
  (( ${#pids[@]} )) && kill_pids KILL "${pids[@]}"
  # the recorded processes, in reverse order of start
  if [[ -f "$dir/pids" ]]; then
    pids=()
    while read -r name pid; do pids=("$pid" "${pids[@]}"); done < "$dir/pids"
    (( ${#pids[@]} )) && kill_pids TERM "${pids[@]}"
    rm -f "$dir/pids"
  fi
  # kube-proxy's iptables chains
  if [[ -n "$(iptables-save -t nat 2>/dev/null | grep -m1 KUBE-)" ]]; then
    local kp
    kp="$(ls "${EVIDENCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/evidence-operator}/bin/kube-proxy-$KUBERNETES_VERSION" 2>/dev/null || true)"
    [[ -n "$kp" ]] && "$kp" --cleanup >/dev/null 2>&1 || true
  fi
  # and any KUBE-* rule or chain left (kube-proxy's or the kubelet's; no other
  # Kubernetes runs on this machine): rules jumping to them, then the chains
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      "$ipt"-save -t "$table" 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | while read -r rule; do
        # shellcheck disable=SC2086
        "$ipt" -t "$table" -D ${rule#-A } 2>/dev/null || true
      done || true
      for chain in $("$ipt"-save -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt"-save -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # the pods' network namespaces (ours: an address in the pod range)
  local ns
  for ns in /var/run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    if ip -n "$(basename "$ns")" -4 addr 2>/dev/null | grep -q "inet ${pod_cidr%.*}\."; then
      umount "$ns" 2>/dev/null || true
      rm -f "$ns"
    fi
  done
  # everything mounted under DIR (containerd's snapshots and shm, the kubelet's volumes),
  # deepest first
  if [[ -d "$dir" ]]; then
    local abs m
    abs="$(cd "$dir" && pwd -P)"
    for m in $(awk -v d="$abs/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  ip link del "$bridge" 2>/dev/null || true
  rm -rf /var/log/pods/evidence-operator-system_* /var/log/pods/bwv-westminster_* /var/lib/cni/results/evidence-e2e-* 2>/dev/null || true
  if [[ -d "$dir" ]]; then
    rm -rf "$dir/etcd" "$dir/containerd" "$dir/kubelet" "$dir/minio" "$dir/cni" "$dir/pki" "$dir"/*.tar 2>/dev/null || true
  fi
  log "down: nothing of the node runs or is mounted"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  import) import "${args[@]}" ;;
  *) echo "usage: $0 up|down|import [--dir DIR] [ARCHIVE...]" >&2; exit 2 ;;
esac
