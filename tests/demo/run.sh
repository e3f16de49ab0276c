#!/usr/bin/env bash
# make demo: a local control plane + MinIO + the operator, and clips visibly moving.
#
# 1. builds (or reuses) the pinned servers and starts them on loopback;
# 2. creates hot, cool and legal-hold buckets in MinIO (legal-hold with Object Lock) and
#    uploads a few hundred synthetic clips, recorded over the past months and years;
# 3. installs the CRDs and applies the examples from deploy/examples/ (the policy and
#    legal hold as they are; the bucket pointed at the local MinIO);
# 4. runs the operator, and shows a live table of clips per tier while a scripted
#    timeline creates a LegalHold (clips pulled into the held tier), later deletes it (the
#    case closes: clips tagged to be kept six more years, released back to cool), and
#    restores a clip deleted by mistake (the policy's restoreWindow, a ClipRestore).
# Ctrl-C stops everything (servers, operator) and removes the data.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="$root/target/demo"
servers="$dir/servers"
ns=bwv-westminster
count="${DEMO_CLIPS:-300}"
mkdir -p "$dir"

log() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  log "stopping the operator and the servers ..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$root/tests/servers/down.sh" --dir "$servers" || true
  log "done. Operator log: $dir/operator.log"
}
trap cleanup EXIT INT TERM

log "building the operator and the demo tool (first time: a few minutes) ..."
(cd "$root" && cargo build --locked -q -p evidence-operator -p evidence-operator-tests --bins)
bin="$root/target/debug"

log "starting kube-apiserver, etcd and MinIO (first time: builds them, 10-20 minutes) ..."
"$root/tests/servers/up.sh" --dir "$servers" --watch $$
# shellcheck disable=SC1091
. "$servers/env"
k() { "$EVIDENCE_TEST_KUBECTL" "$@"; }

log "creating buckets and uploading $count synthetic clips ..."
"$bin/evidence-demo" seed --env "$servers/env" --count "$count"

log "installing the CRDs and the example resources ..."
k apply --server-side -f "$root/crds/" > /dev/null
k wait --for condition=established --timeout=60s -f "$root/crds/" > /dev/null
k apply -f "$root/deploy/examples/00-namespace.yaml"
# The Met policy with its restore window on (a deleted clip stays restorable for 7 days).
sed -e "s|# restoreWindow: 7d|restoreWindow: 7d|" \
    "$root/deploy/examples/retentionpolicy-met.yaml" | k apply -f -
# The credentials Secret template, filled with the local MinIO's keys.
sed -e "s#AWS_ACCESS_KEY_ID: .*#AWS_ACCESS_KEY_ID: $AWS_ACCESS_KEY_ID#" \
    -e "s#AWS_SECRET_ACCESS_KEY: .*#AWS_SECRET_ACCESS_KEY: $AWS_SECRET_ACCESS_KEY#" \
    "$root/deploy/examples/credentials-secret.yaml" | k apply -f -
# The example bucket, pointed at the local MinIO: its endpoint, path-style addressing,
# and REDUCED_REDUNDANCY for the cool tier (MinIO knows no STANDARD_IA).
sed -e "s|# endpoint: .*|endpoint: $AWS_ENDPOINT_URL|" \
    -e "s|# forcePathStyle: true|forcePathStyle: true|" \
    -e "s|storageClass: STANDARD_IA|storageClass: REDUCED_REDUNDANCY|" \
    -e "s|sweepInterval: .*|sweepInterval: 1m|" \
    "$root/deploy/examples/evidencebucket.yaml" | k apply -f -

log "starting the operator (log: $dir/operator.log) ..."
"$bin/evidence-demo" operate --env "$servers/env" --namespace "$ns" > "$dir/operator.log" 2>&1 &
pids+=($!)

timeline="$dir/timeline.txt"
: > "$timeline"
(
  note() { echo "$(date +%H:%M:%S)  $*" >> "$timeline"; }
  note "operator started: expired non-evidential clips are deleted, kept clips older than 30 days move to cool, clips past review flagged"
  sleep "${DEMO_HOLD_AFTER:-30}"
  note "applying deploy/examples/legalhold.yaml (case 01/123456/26): its clips move into the legal-hold tier, held"
  k apply -f "$root/deploy/examples/legalhold.yaml" > /dev/null
  sleep "${DEMO_RELEASE_AFTER:-40}"
  note "the case closes (LegalHold deleted): its clips are tagged evidence.bwv.io/retain-until six years on (retainAfterRelease: 6y), then released back to cool"
  k delete -f "$root/deploy/examples/legalhold.yaml" --wait=false > /dev/null
  sleep "${DEMO_RESTORE_AFTER:-30}"
  note "applying deploy/examples/cliprestore.yaml: the clip tagged non-evidential by mistake, soft-deleted at the start (restoreWindow: 7d), comes back as stop-and-search, same version"
  k apply -f "$root/deploy/examples/cliprestore.yaml" > /dev/null
  sleep 30
  note "lifecycle complete; the operator keeps sweeping (Ctrl-C to stop)"
) &
pids+=($!)

"$bin/evidence-demo" watch --env "$servers/env" --timeline "$timeline" \
  --kubectl "$EVIDENCE_TEST_KUBECTL" --namespace "$ns"
