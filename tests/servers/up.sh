#!/usr/bin/env bash
# Start the real test servers on 127.0.0.1, each on a free port:
#   etcd, kube-apiserver (TLS with a generated CA, a static admin token, RBAC on),
#   MinIO in region eu-west-2 (the UK store), a second MinIO in us-east-1
#   (a non-UK store, for the region-refusal tests), and SeaweedFS (`weed server`:
#   master, volume, filer and S3 gateway in one process; the second S3 server, for
#   AWS semantics without MinIO's listing extension; it reports no region, see
#   docs/seaweedfs.md), all with the same S3 access key.
# Waits until each answers, then writes <dir>/env (shell-sourceable) with
#   KUBECONFIG AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
#   EVIDENCE_TEST_NON_UK_ENDPOINT EVIDENCE_TEST_NON_UK_REGION
#   EVIDENCE_TEST_SEAWEEDFS_ENDPOINT
# and <dir>/pids (one "name pid" per line) for down.sh.
#
#   tests/servers/up.sh [--dir DIR] [--watch PID]
#     --dir DIR    where data, certificates, logs and env go (default target/servers)
#     --watch PID  also start a watchdog that stops these servers when PID exits
#                  (the Rust test harness passes its own PID, so a crashed or killed
#                  test run never leaves servers behind)
# A server whose port is taken between choosing and binding it is started again on
# another (see "ports" below); EVIDENCE_SERVERS_TAKEN_PORT=PORT hands every server PORT
# on its first attempt, to test that.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="$root/target/servers"
watch=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --watch) watch="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { printf '[servers] %s\n' "$*" >&2; }

if [[ -f "$dir/pids" ]]; then
  log "servers already recorded in $dir/pids; stopping them first"
  "$here/down.sh" --dir "$dir"
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
rm -f "$dir"/*.log # logs are appended to (a retried start keeps its earlier attempt)

# Tools: installed (or built) on demand, paths printed as tool=path.
eval "$("$here/install.sh" etcd kube-apiserver kubectl minio seaweedfs | sed 's/^\([a-z-]*\)=/bin_\1=/; s/^bin_kube-apiserver/bin_apiserver/')"

# --- ports --------------------------------------------------------------------
# A port chosen by binding port 0 and closing the socket is only free until someone else
# binds it: another server of this script still starting, a second `up.sh`, a test. So a
# server is never trusted to have got its port. Each one is started on fresh ports and
# watched until its own process (its PID, through /proc) holds a listening socket on
# every one of them; if it exits first because a port was taken meanwhile ("address
# already in use"), it is started again on new ports. A server's ports are chosen only
# once the previous server listens, so this script cannot hand one port out twice, and a
# health check can never be answered by somebody else's server on "our" port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

listens_on() { # pid port: the process itself holds a LISTEN socket on 127.0.0.1:port
  local pid="$1" port inode
  port="$(printf ':%04X' "$2")"
  # /proc/net/tcp{,6}: local address is field 2 (hex ip:port), state field 4 (0A =
  # LISTEN), inode field 10; the socket is ours when one of our fds links to it.
  for inode in $(awk -v p="$port" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
                   /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    if find "/proc/$pid/fd" -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null | grep -q .; then
      return 0
    fi
  done
  return 1
}

start() { # name, command...; logs to <dir>/<name>.log (appending: retries keep earlier attempts)
  local name="$1"; shift
  "$@" >> "$dir/$name.log" 2>&1 &
  last_pid=$!
}

record() { # name pid: a server that came up, for down.sh
  echo "$1 $2" >> "$dir/pids"
}

# start_listening NAME NPORTS TIMEOUT LAUNCHER: runs `LAUNCHER port...` (which must call
# `start NAME ...`) on NPORTS fresh ports until the process listens on all of them.
# Sets `ports` (the ports it got) and `last_pid`. At most 8 attempts.
start_listening() {
  local name="$1" nports="$2" timeout="$3" launcher="$4" attempt i deadline ok p
  for attempt in 1 2 3 4 5 6 7 8; do
    ports=()
    for ((i = 0; i < nports; i++)); do ports+=("$(free_port)"); done
    # test hook (tests/soak.sh, tests/integration/servers.rs): the first attempt of each
    # server is handed a port the caller holds, as if it had been taken meanwhile
    if (( attempt == 1 )) && [[ -n "${EVIDENCE_SERVERS_TAKEN_PORT:-}" ]]; then
      ports[0]="$EVIDENCE_SERVERS_TAKEN_PORT"
    fi
    printf -- '--- attempt %s on port(s) %s\n' "$attempt" "${ports[*]}" >> "$dir/$name.log"
    "$launcher" "${ports[@]}"
    deadline=$((SECONDS + timeout))
    while :; do
      ok=1
      for p in "${ports[@]}"; do listens_on "$last_pid" "$p" || { ok=0; break; }; done
      if (( ok )); then record "$name" "$last_pid"; return 0; fi
      if ! kill -0 "$last_pid" 2>/dev/null; then break; fi
      if (( SECONDS >= deadline )); then
        kill "$last_pid" 2>/dev/null || true
        log "timed out after ${timeout}s waiting for $name to listen on ${ports[*]} (log: $dir/$name.log)"
        return 1
      fi
      sleep 0.1
    done
    wait "$last_pid" 2>/dev/null || true
    # (Go servers say "bind: address already in use"; MinIO checks first and says
    # "Specified port is already in use")
    if ! grep -qiE 'address already in use|port is already in use' "$dir/$name.log"; then
      log "$name exited before listening on ${ports[*]} (log: $dir/$name.log)"
      return 1
    fi
    log "$name: port ${ports[*]} was taken before it could bind it; retrying on new ports"
    # the next attempt must not see this attempt's message
    mv "$dir/$name.log" "$dir/$name.attempt-$attempt.log"
  done
  log "$name could not get a port in 8 attempts"
  return 1
}

: > "$dir/pids"
cleanup_on_error() {
  log "start-up failed; stopping what was started (logs in $dir/*.log)"
  for f in "$dir"/*.log; do [[ -f "$f" ]] && { echo "--- $f (last lines)" >&2; tail -n 20 "$f" >&2; }; done
  "$here/down.sh" --dir "$dir" --keep-logs || true
}
trap cleanup_on_error ERR

wait_for() { # description, timeout seconds, command...
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" > /dev/null 2>&1; do
    if (( SECONDS >= deadline )); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.2
  done
}

# --- certificates and credentials -------------------------------------------
pki="$dir/pki"; mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=evidence-operator-test-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > "$pki/san.ext"
openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 7 -extfile "$pki/san.ext" -out "$pki/apiserver.crt" 2>/dev/null
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
admin_token="$(openssl rand -hex 24)"
echo "$admin_token,evidence-admin,evidence-admin,system:masters" > "$pki/tokens.csv"

# --- etcd ----------------------------------------------------------------------
launch_etcd() { # client port, peer port
  rm -rf "$dir/etcd" # a failed attempt may have bootstrapped its data with other ports
  start etcd "$bin_etcd" --name evidence-test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$1" --advertise-client-urls "http://127.0.0.1:$1" \
    --listen-peer-urls "http://127.0.0.1:$2" --initial-advertise-peer-urls "http://127.0.0.1:$2" \
    --initial-cluster "evidence-test=http://127.0.0.1:$2" --unsafe-no-fsync --quota-backend-bytes 4294967296
}
start_listening etcd 2 30 launch_etcd
etcd_port="${ports[0]}"
wait_for "etcd on :$etcd_port" 30 curl -sf "http://127.0.0.1:$etcd_port/health"
log "etcd ready on 127.0.0.1:$etcd_port"

# --- MinIO (UK and non-UK) -----------------------------------------------------
s3_user="evidence-test"; s3_pass="$(openssl rand -hex 16)"
minio_region=""
launch_minio() { # port (named by minio_name, region minio_region)
  mkdir -p "$dir/$minio_name"
  MINIO_ROOT_USER="$s3_user" MINIO_ROOT_PASSWORD="$s3_pass" MINIO_SITE_REGION="$minio_region" \
    MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 \
    start "$minio_name" "$bin_minio" server --quiet --address "127.0.0.1:$1" "$dir/$minio_name/data"
}
minio_name=minio minio_region=eu-west-2
start_listening minio 1 60 launch_minio
minio_port="${ports[0]}"
minio_name=minio-us minio_region=us-east-1
start_listening minio-us 1 60 launch_minio
minio_us_port="${ports[0]}"

# --- kube-apiserver ------------------------------------------------------------
launch_apiserver() { # secure port
  start kube-apiserver "$bin_apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$1" --advertise-address 127.0.0.1 \
    --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
    --authorization-mode RBAC --allow-privileged=true \
    --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer "https://127.0.0.1:$1" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --disable-admission-plugins ServiceAccount \
    --enable-priority-and-fairness=false --profiling=false --v=1
}
start_listening kube-apiserver 1 120 launch_apiserver
api_port="${ports[0]}"

# --- SeaweedFS -----------------------------------------------------------------
# Started while the apiserver gets ready (its own readiness takes ~3.5 s). Every port
# explicit (a gRPC port left out defaults to its HTTP port + 10000, which may be past
# 65535 or someone else's), so start_listening sees all 8. One volume per bucket
# (WEED_MASTER_VOLUME_GROWTH_COPY_1=1), 64 MB volumes and as many slots as the disk
# holds (-volume.max=0): with the defaults (7 volumes per bucket, 8 slots) new buckets
# fail with InternalError after a few dozen. GOMEMLIMIT keeps its RSS near 130 MiB.
# Its gRPC unix sockets always go to /tmp/seaweedfs-*-<port>.sock (down.sh removes them).
cat > "$dir/seaweedfs-s3.json" <<JSON
{"identities":[{"name":"$s3_user","credentials":[{"accessKey":"$s3_user","secretKey":"$s3_pass"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
launch_seaweedfs() { # master, master gRPC, volume, volume gRPC, filer, filer gRPC, s3, s3 gRPC
  local d="$dir/seaweedfs"
  rm -rf "$d" && mkdir -p "$d" # a failed attempt may have bootstrapped with other ports
  # weed itself, no wrapper shell: the recorded PID is the server's
  WEED_MASTER_VOLUME_GROWTH_COPY_1=1 GOMEMLIMIT=256MiB \
    start seaweedfs "$bin_seaweedfs" server -dir="$d" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$1" -master.port.grpc="$2" -master.telemetry=false -master.volumeSizeLimitMB=64 \
    -volume.port="$3" -volume.port.grpc="$4" -volume.max=0 -volume.preStopSeconds=0 \
    -filer -filer.port="$5" -filer.port.grpc="$6" -filer.localSocket="$d/filer.sock" \
    -s3 -s3.port="$7" -s3.port.grpc="$8" -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$dir/seaweedfs-s3.json" -s3.localSocket="$d/s3.sock"
}
start_listening seaweedfs 8 60 launch_seaweedfs
seaweedfs_ports="${ports[*]}"
seaweedfs_port="${ports[6]}"
echo "$seaweedfs_ports" > "$dir/seaweedfs.ports"

kubeconfig="$dir/kubeconfig"
cat > "$kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: evidence-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: evidence-admin
  user:
    token: $admin_token
contexts:
- name: evidence-test
  context:
    cluster: evidence-test
    user: evidence-admin
    namespace: default
current-context: evidence-test
KCFG

wait_for "kube-apiserver on :$api_port" 120 "$bin_kubectl" --kubeconfig "$kubeconfig" get --raw /readyz
wait_for "default namespace" 60 "$bin_kubectl" --kubeconfig "$kubeconfig" get namespace default
log "kube-apiserver ready on 127.0.0.1:$api_port"
wait_for "MinIO (eu-west-2) on :$minio_port" 60 curl -sf "http://127.0.0.1:$minio_port/minio/health/ready"
wait_for "MinIO (us-east-1) on :$minio_us_port" 60 curl -sf "http://127.0.0.1:$minio_us_port/minio/health/ready"
log "MinIO ready on 127.0.0.1:$minio_port (eu-west-2) and 127.0.0.1:$minio_us_port (us-east-1)"
wait_for "SeaweedFS on :$seaweedfs_port" 60 curl -sf "http://127.0.0.1:$seaweedfs_port/healthz"
log "SeaweedFS ready on 127.0.0.1:$seaweedfs_port (S3; master, volume and filer on $seaweedfs_ports)"

cat > "$dir/env" <<ENV
# written by tests/servers/up.sh; stop with tests/servers/down.sh --dir $dir
export KUBECONFIG=$kubeconfig
export AWS_ENDPOINT_URL=http://127.0.0.1:$minio_port
export AWS_ACCESS_KEY_ID=$s3_user
export AWS_SECRET_ACCESS_KEY=$s3_pass
export AWS_REGION=eu-west-2
export EVIDENCE_TEST_NON_UK_ENDPOINT=http://127.0.0.1:$minio_us_port
export EVIDENCE_TEST_NON_UK_REGION=us-east-1
export EVIDENCE_TEST_SEAWEEDFS_ENDPOINT=http://127.0.0.1:$seaweedfs_port
export EVIDENCE_TEST_KUBECTL=$bin_kubectl
export EVIDENCE_TEST_SERVERS_DIR=$dir
ENV

if [[ -n "$watch" ]]; then
  # Detached watchdog: when the watched process exits, stop everything we started.
  nohup setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" --dir "$3"' \
    watchdog "$watch" "$here/down.sh" "$dir" > "$dir/watchdog.log" 2>&1 < /dev/null &
  echo "watchdog $!" >> "$dir/pids"
fi
trap - ERR
log "all servers up; environment in $dir/env"
