#!/usr/bin/env bash
# kind end-to-end (CI machines with Docker): the scenario of tests/e2e/scenario.sh, shared
# with make e2e-node. A kind cluster, MinIO (region eu-west-2), the operator image built
# from the Dockerfile and installed with the Helm chart, the tenant of deploy/examples/
# pointed at MinIO, and the lifecycle checked: kept clips move cool, a LegalHold pulls
# its clips into the Object Lock bucket under legal hold, deleting it releases them, and
# nothing the safety floor protects is deleted.
#
#   tests/e2e/kind/run.sh            # needs docker, kind, kubectl, helm
#   KEEP_CLUSTER=1 tests/e2e/kind/run.sh
#
# It cannot run on machines without a container engine (see README.md next to it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cluster="${KIND_CLUSTER:-evidence-e2e}"
image="evidence-operator:e2e"
node_image="${KIND_NODE_IMAGE:-kindest/node:v1.35.0}"

WORK="$root/target/e2e-kind"
mkdir -p "$WORK"; : > "$WORK/proofs"
# the scenario and the proofs, shared with make e2e-node (tests/e2e/node/run.sh)
# shellcheck source=../scenario.sh
. "$root/tests/e2e/scenario.sh"

cleanup() {
  if [[ -z "${KEEP_CLUSTER:-}" ]]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT


# --- the hooks the scenario needs ----------------------------------------------------
k() { kubectl "$@"; }
helm_() { helm "$@"; }
mc() { kubectl -n minio exec mc -- mc "$@"; }
s3_mb() { if [[ "${2:-}" == lock ]]; then mc mb --region eu-west-2 --with-lock "e2e/$1"; else mc mb --region eu-west-2 "e2e/$1"; fi; }
s3_put() { # (mc cannot set an earlier upload time: S3_CAN_BACKDATE=0)
  kubectl -n minio exec mc -- sh -c "echo 'clip $2' | mc pipe --tags '$3' e2e/$1/$2"
}
s3_has() { mc ls --recursive "e2e/$1/$2" 2>/dev/null | grep -q .; }
s3_legal_hold() { mc legalhold info "e2e/$1/$2" 2>/dev/null | grep -oE 'ON|OFF' | head -n 1; }
metrics_of_service() {
  kubectl -n "$OP_NS" port-forward "svc/$RELEASE-metrics" 18080:8080 >/dev/null 2>&1 &
  local pf=$! out rc=0
  wait_until 20 "port-forward to the metrics Service" curl -sf localhost:18080/healthz
  out="$(curl -fsS localhost:18080/metrics)" || rc=$?
  kill "$pf" 2>/dev/null || true
  printf '%s\n' "$out"; return "$rc"
}
metrics_of_pod() {
  kubectl -n "$OP_NS" port-forward "pod/$1" 18081:8080 >/dev/null 2>&1 &
  local pf=$! out rc=0
  wait_until 20 "port-forward to $1" curl -sf localhost:18081/healthz >/dev/null 2>&1 || true
  out="$(curl -fsS localhost:18081/metrics)" || rc=$?
  kill "$pf" 2>/dev/null || true; wait "$pf" 2>/dev/null || true
  printf '%s\n' "$out"; return "$rc"
}
S3_ENDPOINT_FROM_PODS=http://minio.minio.svc.cluster.local:9000
S3_ACCESS_KEY=e2e-access-key S3_SECRET_KEY=e2e-secret-key-0123456789 S3_CAN_BACKDATE=0
IMAGE_REPOSITORY=evidence-operator IMAGE_TAG=e2e

log "offline check of the examples (the same CI step a GitOps repository runs)"
cargo run --locked -q -p evidence-operator -- check -f "$root/deploy/examples"

log "cluster $cluster ($node_image)"
kind create cluster --name "$cluster" --image "$node_image" --wait 120s

log "image $image (the Dockerfile: its build stage runs image/rootfs.sh, as make image does)"
docker build -t "$image" "$root"
kind load docker-image "$image" --name "$cluster"

log "MinIO"
kubectl apply -f "$here/minio.yaml"
kubectl -n minio rollout status deploy/minio --timeout=180s
kubectl -n minio wait pod/mc --for=condition=Ready --timeout=180s
wait_until 60 "mc alias" kubectl -n minio exec mc -- sh -c \
  'mc alias set e2e http://minio.minio.svc.cluster.local:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"'

install_chart
prove_one_leader
met_scenario
prove_failover
prove_metrics
prove_rbac
prove_upgrade
prove_uninstall
log "PASSED"
sed 's/^PROOF /  /' "$WORK/proofs"
