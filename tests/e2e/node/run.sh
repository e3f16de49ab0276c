#!/usr/bin/env bash
# make e2e-node: the operator image and the Helm chart, run for real on a one-node
# cluster on this machine (tests/e2e/node/cluster.sh: a kubelet, containerd, a bridge
# CNI, kube-proxy and the control plane, all built from source and cached by
# tests/servers/install.sh), then the shared scenario (tests/e2e/scenario.sh) and the
# proofs: two Ready replicas and one leader, leader hand-over, metrics through the
# Service, the probes, the chart's RBAC, helm upgrade and helm uninstall.
#
#   tests/e2e/node/run.sh               # root; tear-down always (trap)
#   KEEP_NODE=1 tests/e2e/node/run.sh   # leave the node up (then: cluster.sh down)
# Everything lives under target/e2e-node (the cluster) and target/e2e-node-image (the
# image); docs/e2e-node.md says what it starts and what differs from kind.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dir="$root/target/e2e-node"
t0=$SECONDS
WORK="$dir/work"

cut_api=() # the iptables rule that cuts the pods' route to the API server, while in force
cleanup() {
  local rc=$?
  (( ${#cut_api[@]} )) && iptables -D "${cut_api[@]}" 2>/dev/null
  if [[ -n "${KEEP_NODE:-}" ]]; then
    echo "[e2e] KEEP_NODE set: the node is still up; source $dir/env, stop with tests/e2e/node/cluster.sh down" >&2
  else
    "$here/cluster.sh" down --dir "$dir" || true
  fi
  (( rc == 0 )) || echo "[e2e] FAILED after $((SECONDS - t0))s (logs were in $dir/logs; KEEP_NODE=1 keeps them)" >&2
}
trap cleanup EXIT
# a failing command says where it was (set -e alone exits without a word)
set -E
trap 'echo "[e2e] FAILED: exit $? at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT TERM

# shellcheck source=../scenario.sh
. "$root/tests/e2e/scenario.sh"

[[ $EUID -eq 0 ]] || fail "make e2e-node needs root (the kubelet, containerd and the CNI plugins do)"
helm_bin="$("$root/tests/servers/install.sh" helm | sed -n 's/^helm=//p')"

log "image (image/build.sh: the Dockerfile's final stage over image/rootfs.sh's rootfs)"
t_image=$SECONDS
"$root/image/build.sh" --out "$root/target/e2e-node-image" --tag evidence-operator:e2e
t_image=$((SECONDS - t_image))

log "node (tests/e2e/node/cluster.sh up)"
t_node=$SECONDS
"$here/cluster.sh" up --dir "$dir"
t_node=$((SECONDS - t_node))
# shellcheck disable=SC1091
. "$dir/env"
mkdir -p "$WORK"; : > "$WORK/proofs"
"$here/cluster.sh" import --dir "$dir" "$root/target/e2e-node-image/evidence-operator.tar"

# --- the hooks the scenario needs ---------------------------------------------------
k() { "$E2E_KUBECTL" "$@"; }
# (helm built without its Makefile's ldflags assumes Kubernetes 1.20 when templating)
helm_() {
  case "$1" in
    template) "$helm_bin" "$@" --kube-version "$KUBE_VERSION" ;;
    *) "$helm_bin" "$@" ;;
  esac
}
KUBE_VERSION="$(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
s3_req() { # METHOD PATH [curl args]: one signed request to the node's MinIO
  local m="$1" p="$2"; shift 2
  curl -sS --fail --aws-sigv4 "aws:amz:$E2E_S3_REGION:s3" --user "$E2E_S3_ACCESS_KEY:$E2E_S3_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$m" "$@" "$E2E_S3_ENDPOINT/$p"
}
s3_mb() {
  local lock=(); [[ "${2:-}" == lock ]] && lock=(-H "x-amz-bucket-object-lock-enabled: true")
  s3_req PUT "$1" "${lock[@]}" --data-binary \
    "<CreateBucketConfiguration><LocationConstraint>$E2E_S3_REGION</LocationConstraint></CreateBucketConfiguration>" >/dev/null
}
s3_put() { # the upload time is set with MinIO's replication header (root credentials)
  local mtime=(); [[ -n "${4:-}" ]] && mtime=(-H "X-Minio-Source-Mtime: $4")
  local tags; tags="$(python3 -c 'import sys,urllib.parse; print("&".join(urllib.parse.quote(k,safe="")+"="+urllib.parse.quote(v,safe="") for k,v in (p.split("=",1) for p in sys.argv[1].split("&"))))' "$3")"
  printf 'clip %s\n' "$2" | s3_req PUT "$1/$2" --data-binary @- -H "x-amz-tagging: $tags" "${mtime[@]}" >/dev/null
}
s3_has() {
  local prefix; prefix="$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1],safe=""))' "$2")"
  s3_req GET "$1?list-type=2&prefix=$prefix" | grep -qF "<Key>$2</Key>"
}
s3_legal_hold() { s3_req GET "$1/$2?legal-hold=" 2>/dev/null | sed -n 's:.*<Status>\(ON\|OFF\)</Status>.*:\1:p'; }
metrics_of_service() {
  local ip port
  ip="$(k -n "$OP_NS" get svc "$RELEASE-metrics" -o jsonpath='{.spec.clusterIP}')"
  port="$(k -n "$OP_NS" get svc "$RELEASE-metrics" -o jsonpath='{.spec.ports[0].port}')"
  curl -sf --max-time 5 "http://$ip:$port/metrics"
}
metrics_of_pod() {
  local ip; ip="$(k -n "$OP_NS" get pod "$1" -o jsonpath='{.status.podIP}')"
  curl -sf --max-time 3 "http://$ip:8080/metrics"
}
leader_sample() { # the scenario's, with one kubectl call: the pods' IPs are reachable here
  local name ip lead=()
  while read -r name ip; do
    [[ -n "$ip" ]] || continue
    if curl -sf --max-time 1 "http://$ip:8080/metrics" | grep -qE '^evidence_operator_leader(\{[^}]*\})? 1$'; then lead+=("$name"); fi
  done < <(k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}')
  echo "${#lead[@]} ${lead[*]}"
}
S3_ENDPOINT_FROM_PODS="$E2E_S3_ENDPOINT" S3_ACCESS_KEY="$E2E_S3_ACCESS_KEY" S3_SECRET_KEY="$E2E_S3_SECRET_KEY"
S3_CAN_BACKDATE=1 IMAGE_REPOSITORY=evidence-operator IMAGE_TAG=e2e

# --- the probes (node only: it can cut a pod's route and stop MinIO) --------------------
pod_count() { live_operator_pods | wc -w | tr -d ' '; }
prove_probes() {
  local p ip restarts
  for p in $(live_operator_pods); do
    ip="$(k -n "$OP_NS" get pod "$p" -o jsonpath='{.status.podIP}')"
    [[ "$(curl -sf "http://$ip:8080/healthz")" == ok ]] || fail "$p: /healthz"
    [[ "$(curl -sf "http://$ip:8080/readyz")" == ready ]] || fail "$p: /readyz"
  done
  restarts="$(k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator -o jsonpath='{.items[*].status.containerStatuses[0].restartCount}')"
  proof "probes-answer: /healthz=ok and /readyz=ready on every pod; restart counts [$restarts] (liveness never failed)"

  # MinIO stopped (SIGSTOP: it holds its connections and answers nothing) for 15 s:
  # what do the probes do?
  local minio_pid min_ready=2 n end
  minio_pid="$(awk '$1 == "minio" { print $2 }' "$dir/pids")"
  kill -STOP "$minio_pid"
  end=$((SECONDS + 15))
  while (( SECONDS < end )); do n="$(ready_count)"; (( n < min_ready )) && min_ready=$n; sleep 1; done
  kill -CONT "$minio_pid"
  proof "readiness-with-minio-stopped: MinIO frozen 15 s; Ready pods stayed at minimum $min_ready of 2 (/readyz is start-up done and the API server answering the election, not S3 health: a store outage shows in the EvidenceBucket's conditions, events and metrics)"

  # The pods' route to the API server cut (the node's own kubectl keeps it) while a
  # standby is replaced: what do the new pod, the standby and the leader do?
  local api_port victim newpod leader0 restarts0 t_cut
  api_port="$(sed -n 's#.*server: https://[^:]*:\([0-9]*\)#\1#p' "$KUBECONFIG" | head -n 1)"
  leader0="$(lease_holder)"
  restarts0="$(k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator -o jsonpath='{range .items[*]}{.metadata.name}={.status.containerStatuses[0].restartCount} {end}')"
  cut_api=(INPUT -i evid0 -d "$E2E_NODE_IP" -p tcp --dport "$api_port" -j REJECT --reject-with tcp-reset)
  iptables -I "${cut_api[@]}"
  t_cut=$SECONDS
  local cut_at; cut_at="$(date -u +%H:%M:%S.%N | cut -c1-12)"
  log "route to the API server cut at $cut_at UTC"
  victim="$(live_operator_pods | tr ' ' '\n' | grep -vx "$leader0" | head -n 1)"
  k -n "$OP_NS" delete pod "$victim" --wait=true --timeout=60s >/dev/null
  wait_until 60 "a replacement pod" equals 2 pod_count
  newpod="$(live_operator_pods | tr ' ' '\n' | grep -vx "$leader0" | head -n 1)"
  # 35 s: past the renew deadline (10 s) plus three failed readiness probes (15 s)
  local new_ready_at="" leader_unready_at="" leader_metric_0_at="" ready first_look=$((SECONDS - t_cut))
  while (( SECONDS - t_cut < 35 )); do
    ready="$(k -n "$OP_NS" get pod "$newpod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
    [[ -z "$new_ready_at" && "$ready" == True ]] && new_ready_at=$((SECONDS - t_cut))
    ready="$(k -n "$OP_NS" get pod "$leader0" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    [[ -z "$leader_unready_at" && "$ready" != True ]] && leader_unready_at=$((SECONDS - t_cut))
    if [[ -z "$leader_metric_0_at" ]] && ! metrics_of_pod "$leader0" 2>/dev/null | grep -qE '^evidence_operator_leader(\{[^}]*\})? 1$'; then
      leader_metric_0_at=$((SECONDS - t_cut))
    fi
    sleep 1
  done
  local code_new code_leader
  code_new="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$(k -n "$OP_NS" get pod "$newpod" -o jsonpath='{.status.podIP}'):8080/readyz" || true)"
  code_leader="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$(k -n "$OP_NS" get pod "$leader0" -o jsonpath='{.status.podIP}'):8080/readyz" || true)"
  iptables -D "${cut_api[@]}"; cut_api=()
  local t_back=$SECONDS
  wait_until 180 "both pods Ready again with the route restored" equals 2 ready_count
  wait_until 60 "one leader again" one_leader_agrees
  local restarts1
  restarts1="$(k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator -o jsonpath='{range .items[*]}{.metadata.name}={.status.containerStatuses[0].restartCount} {end}')"
  [[ -z "$new_ready_at" ]] || fail "readiness-without-api-server: the new pod $newpod became Ready ${new_ready_at}s after the route to the API server was cut"
  # the leader's own account (its process exited on losing the Lease: --previous)
  k -n "$OP_NS" logs "$leader0" --previous > "$WORK/leader-during-api-cut.log" 2>/dev/null ||
    k -n "$OP_NS" logs "$leader0" > "$WORK/leader-during-api-cut.log" 2>/dev/null || true
  local said
  said="$(python3 - "$WORK/leader-during-api-cut.log" <<'PY'
import json, re, sys
first = {}
for line in open(sys.argv[1], errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    m = e.get("message", "")
    if re.match(r"(lease update|could not renew|lost the lease|stopping controllers|no longer leading)", m) and m not in first:
        first[m] = e.get("timestamp", "")[11:23]
print("; ".join(f"{t} {m}" for m, t in first.items()))
PY
)"
  proof "readiness-without-api-server: route cut at $cut_at UTC for $((t_back - t_cut))s (watched each second from ${first_look}s, after the standby was replaced); the new pod $newpod never Ready (/readyz HTTP $code_new); the leader $leader0 stopped reporting evidence_operator_leader 1 at ${leader_metric_0_at:-never}s (renew deadline 10 s) and was NotReady at ${leader_unready_at:-never}s (/readyz HTTP $code_leader); restored: both Ready and one leader ($(lease_holder)) $((SECONDS - t_back))s later; restarts [$restarts0] -> [$restarts1]; the leader's log: ${said:-see $WORK/leader-during-api-cut.log}"
}

# --- run ---------------------------------------------------------------------------
t_scn=$SECONDS
install_chart
prove_one_leader
met_scenario
prove_failover
prove_metrics
prove_probes
prove_rbac
prove_upgrade
prove_uninstall
t_scn=$((SECONDS - t_scn))

echo
echo "=== make e2e-node: PASSED in $((SECONDS - t0))s (image ${t_image}s, node up ${t_node}s, scenario and proofs ${t_scn}s)"
sed 's/^PROOF /  /' "$WORK/proofs"
