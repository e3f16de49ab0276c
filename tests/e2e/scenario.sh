# shellcheck shell=bash
# The end-to-end scenario, shared by the two drivers so that they cannot drift:
#   tests/e2e/node/run.sh   (make e2e-node: a real kubelet on this machine)
#   tests/e2e/kind/run.sh   (kind, for CI machines with Docker)
# Sourced, not run. The driver defines, before calling the functions below:
#   k ...                    kubectl against the cluster
#   helm_ ...                helm against the cluster
#   s3_mb BUCKET [lock]      make a bucket in region eu-west-2 (lock: Object Lock on)
#   s3_put BUCKET KEY TAGS [UPLOADED_AT]   upload a clip; UPLOADED_AT (RFC 3339) when the
#                            store can be told an earlier upload time (S3_CAN_BACKDATE=1)
#   s3_has BUCKET KEY        succeeds when the key is listed
#   s3_legal_hold BUCKET KEY prints ON or OFF
#   metrics_of_service       prints the metrics Service's /metrics (through the Service)
#   metrics_of_pod POD       prints one pod's /metrics
# and the variables
#   S3_ENDPOINT_FROM_PODS S3_ACCESS_KEY S3_SECRET_KEY S3_CAN_BACKDATE
#   (the chart's default allowedEndpoints, an empty list, allows any endpoint: the
#   scenario runs with it)
#   IMAGE_REPOSITORY IMAGE_TAG WORK (a scratch directory)
# Every check prints one "ok:" line; proofs print "PROOF <name>: ..." lines that the
# driver collects into its summary.

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OP_NS=evidence-operator-system
TENANT_NS=bwv-westminster
RELEASE=evidence-operator
HOT=westminster-hot COOL=westminster-cool LEGAL=westminster-legal-hold

log() { printf '[e2e] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
proof() { printf 'PROOF %s\n' "$*" | tee -a "$WORK/proofs" >&2; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll (0.5 s) until it succeeds, with a deadline
wait_until() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout)) start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
  log "ok: $what ($((SECONDS - start))s)"
}

lease_holder() { k -n "$OP_NS" get lease "$RELEASE" -o jsonpath='{.spec.holderIdentity}'; }
live_operator_pods() { # names of the operator pods not being deleted
  k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator -o json |
    python3 -c 'import json,sys; print(" ".join(p["metadata"]["name"] for p in json.load(sys.stdin)["items"] if not p["metadata"].get("deletionTimestamp")))'
}
all_operator_pods() { # names of the operator pods, also those terminating
  k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator -o jsonpath='{.items[*].metadata.name}'
}
leaders_by_metrics() { # [PODS...]: those (default: the live pods) whose metrics say they lead
  local p pods=("$@")
  (( ${#pods[@]} )) || read -ra pods <<<"$(live_operator_pods)"
  for p in "${pods[@]}"; do
    if metrics_of_pod "$p" 2>/dev/null | grep -qE '^evidence_operator_leader(\{[^}]*\})? 1$'; then echo "$p"; fi
  done
}
ready_count() { k -n "$OP_NS" get pods -l app.kubernetes.io/name=evidence-operator \
  -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true; }
ready_new_pods() { # OLD_PODS: how many operator pods are Ready, when none of OLD_PODS is left
  local p pods; pods="$(all_operator_pods)"
  for p in $1; do [[ " $pods " != *" $p "* ]] || { echo old-left; return; }; done
  ready_count
}
# leader_sample: one line "N POD...": the operator pods, terminating ones too, whose own
# metrics say they lead (a driver that reaches pod IPs redefines it, faster, after
# sourcing this file)
leader_sample() {
  # shellcheck disable=SC2046
  local l; l="$(leaders_by_metrics $(all_operator_pods) | xargs)"
  echo "$(wc -w <<<"$l") $l"
}
one_leader_agrees() { # the Lease names a holder, and it is the one live pod whose metrics say it leads
  local holder; holder="$(lease_holder)"
  [[ -n "$holder" && "$(leaders_by_metrics | xargs)" == "$holder" ]]
}

# small predicates for wait_until
gone() { ! s3_has "$HOT" "$1" && ! s3_has "$COOL" "$1"; }
held_on() { [[ "$(s3_legal_hold "$1" "$2")" == ON ]]; }
equals() { local want="$1"; shift; [[ "$("$@")" == "$want" ]]; }
not_empty() { [[ -n "$("$@")" ]]; }

# --- the chart --------------------------------------------------------------------
install_chart() { # extra helm arguments...
  log "namespace $OP_NS (Pod Security: restricted), then the chart"
  k create namespace "$OP_NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  k label namespace "$OP_NS" --overwrite pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest >/dev/null
  # the tenant's namespace first: the chart's Role for its Secrets goes there
  k apply -f "$E2E_ROOT/deploy/examples/00-namespace.yaml" >/dev/null
  helm_ install "$RELEASE" "$E2E_ROOT/charts/evidence-operator" --namespace "$OP_NS" \
    --set image.repository="$IMAGE_REPOSITORY",image.tag="$IMAGE_TAG",image.pullPolicy=Never \
    --set replicaCount=2 --set "credentialsNamespaces={$TENANT_NS}" \
    "$@" --wait --timeout 180s >/dev/null
  k -n "$OP_NS" wait pods -l app.kubernetes.io/name=evidence-operator --for=condition=Ready --timeout=120s >/dev/null
  local pods; pods="$(live_operator_pods)"
  [[ "$(wc -w <<<"$pods")" -eq 2 ]] || fail "expected 2 operator pods, got: $pods"
  proof "two-replicas-ready: pods $pods both Ready in restricted namespace $OP_NS"
}

# --- the Met scenario -----------------------------------------------------------------
tenant() { # the tenant of deploy/examples/, pointed at the S3 store the pods reach
  local t="$WORK/tenant" rel
  mkdir -p "$t"
  rel="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$E2E_ROOT/deploy/examples" "$t")"
  cat > "$t/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel/00-namespace.yaml
  - $rel/retentionpolicy-met.yaml
  - $rel/credentials-secret.yaml
  - $rel/evidencebucket.yaml
patches:
  - target: { kind: Secret, name: westminster-s3 }
    patch: |-
      - op: replace
        path: /stringData
        value:
          AWS_ACCESS_KEY_ID: $S3_ACCESS_KEY
          AWS_SECRET_ACCESS_KEY: $S3_SECRET_KEY
  - target: { kind: EvidenceBucket, name: westminster }
    patch: |-
      - op: add
        path: /spec/endpoint
        value: $S3_ENDPOINT_FROM_PODS
      - op: add
        path: /spec/forcePathStyle
        value: true
      - op: replace
        path: /spec/sweepInterval
        value: 1m
      - op: replace
        path: /spec/tiers
        value:
          hot: { bucket: $HOT }
          cool: { bucket: $COOL }
          legalHold: { bucket: $LEGAL }
YAML
  k kustomize --load-restrictor LoadRestrictionsNone "$t"
}

met_scenario() {
  log "buckets and clips (recorded months ago; one non-evidential clip past its 31 days that reached storage moments ago)"
  s3_mb "$HOT"; s3_mb "$COOL"; s3_mb "$LEGAL" lock
  s3_put "$HOT" 2026/03/01/BWV-0042/clip-0001.mp4 "evidence.bwv.io/category=domestic-abuse&evidence.bwv.io/camera=BWV-0042&evidence.bwv.io/recorded-at=2026-03-01T14:00:00Z"
  s3_put "$HOT" 2026/03/02/BWV-0099/clip-0002.mp4 "evidence.bwv.io/category=stop-and-search&evidence.bwv.io/camera=BWV-0099&evidence.bwv.io/recorded-at=2026-03-02T10:00:00Z"
  local recorded; recorded="$(date -u -d '-40 days' +%Y-%m-%dT%H:%M:%SZ)"
  s3_put "$HOT" recent/BWV-0100/clip-0003.mp4 "evidence.bwv.io/category=non-evidential&evidence.bwv.io/camera=BWV-0100&evidence.bwv.io/recorded-at=$recorded"
  if [[ "${S3_CAN_BACKDATE:-0}" == 1 ]]; then
    # recorded and uploaded 40 days ago: past its 31 days and past the 24 h safety floor
    s3_put "$HOT" old/BWV-0101/clip-0004.mp4 "evidence.bwv.io/category=non-evidential&evidence.bwv.io/camera=BWV-0101&evidence.bwv.io/recorded-at=$recorded" "$recorded"
  fi

  log "the tenant (deploy/examples/, pointed at the store), applied with kubectl"
  tenant | k apply -f - >/dev/null
  k -n "$TENANT_NS" wait evidencebucket/westminster --for=condition=Ready --timeout=180s >/dev/null
  log "ok: EvidenceBucket westminster Ready"
  k -n "$TENANT_NS" wait retentionpolicy/met-bwv --for=condition=Ready --timeout=60s >/dev/null
  local rp_gen rp_seen
  rp_gen="$(k -n "$TENANT_NS" get retentionpolicy met-bwv -o jsonpath='{.metadata.generation}')"
  rp_seen="$(k -n "$TENANT_NS" get retentionpolicy met-bwv -o jsonpath='{.status.observedGeneration}')"
  [[ "$rp_gen" == "$rp_seen" ]] || fail "RetentionPolicy met-bwv: observedGeneration $rp_seen, generation $rp_gen"
  k -n "$TENANT_NS" wait evidencebucket/westminster --for=condition=PolicyResolved --timeout=60s >/dev/null
  log "ok: RetentionPolicy met-bwv Ready (Valid, observedGeneration $rp_seen) and in use (EvidenceBucket PolicyResolved)"
  wait_until 120 "clip-0002 moved to the cool tier" s3_has "$COOL" 2026/03/02/BWV-0099/clip-0002.mp4
  ! s3_has "$HOT" 2026/03/02/BWV-0099/clip-0002.mp4 || fail "clip-0002 still in hot after its move"
  s3_has "$HOT" recent/BWV-0100/clip-0003.mp4 || fail "the safety floor must keep a clip uploaded moments ago"
  log "ok: clip-0003 (uploaded moments ago) kept by the 24 h safety floor"
  if [[ "${S3_CAN_BACKDATE:-0}" == 1 ]]; then
    wait_until 120 "clip-0004 (expired, uploaded 40 days ago) weeded" gone old/BWV-0101/clip-0004.mp4
    proof "clips-moved-and-weeded: clip-0002 hot->cool, clip-0004 (expired 9 days ago, uploaded 40 days ago) deleted, clip-0003 (expired, uploaded now) kept by the safety floor"
  else
    proof "clips-moved: clip-0002 hot->cool, clip-0003 kept by the safety floor (this store cannot backdate an upload: no deletion checked)"
  fi

  log "LegalHold (deploy/examples/legalhold.yaml)"
  k apply -f "$E2E_ROOT/deploy/examples/legalhold.yaml" >/dev/null
  k -n "$TENANT_NS" wait legalhold/op-kestrel --for=condition=Ready --timeout=120s >/dev/null
  log "ok: LegalHold op-kestrel Ready"
  wait_until 120 "clip-0001 in the legal-hold bucket" s3_has "$LEGAL" 2026/03/01/BWV-0042/clip-0001.mp4
  wait_until 60 "legal hold ON" held_on "$LEGAL" 2026/03/01/BWV-0042/clip-0001.mp4
  wait_until 60 "heldClips reported" equals 1 k -n "$TENANT_NS" get legalhold op-kestrel -o jsonpath='{.status.heldClips}'
  proof "legal-hold-honoured: clip-0001 copied to $LEGAL with S3 legal hold ON, status.heldClips=1"
  proof "every-resource-ready: kubectl wait --for=condition=Ready on RetentionPolicy met-bwv (observedGeneration $rp_seen), EvidenceBucket westminster and LegalHold op-kestrel"
}

# --- proofs ---------------------------------------------------------------------------
prove_one_leader() {
  local holder leaders
  wait_until 60 "a Lease holder" not_empty lease_holder
  holder="$(lease_holder)"
  leaders="$(leaders_by_metrics | xargs)"
  [[ "$leaders" == "$holder" ]] || fail "Lease names $holder, but the pods leading by their metrics are: '$leaders'"
  proof "one-leader: Lease $OP_NS/$RELEASE names $holder; of pods [$(live_operator_pods)] exactly one reports evidence_operator_leader 1: $leaders"
}

prove_failover() {
  local old new start duration lease_s
  old="$(lease_holder)"
  local standby; standby="$(live_operator_pods | tr ' ' '\n' | grep -vx "$old" | head -n 1)"
  lease_s="$(k -n "$OP_NS" get lease "$RELEASE" -o jsonpath='{.spec.leaseDurationSeconds}')"
  log "deleting the leader pod $old (lease duration ${lease_s}s)"
  start=$SECONDS
  k -n "$OP_NS" delete pod "$old" --wait=false >/dev/null
  local deadline=$((SECONDS + lease_s + 30))
  while :; do
    new="$(lease_holder 2>/dev/null || true)"
    [[ -n "$new" && "$new" != "$old" ]] && break
    (( SECONDS < deadline )) || fail "no new leader $((SECONDS - start))s after deleting $old"
    sleep 0.25
  done
  duration=$((SECONDS - start))
  local p
  for p in $(all_operator_pods); do k -n "$OP_NS" logs "$p" > "$WORK/failover-$p.log" 2>&1 || true; done
  (( duration <= lease_s )) || fail "hand-over took ${duration}s, more than the lease duration ${lease_s}s"
  # the sweep continues under the new leader: a new clip moves
  s3_put "$HOT" 2026/03/03/BWV-0007/clip-0005.mp4 "evidence.bwv.io/category=use-of-force&evidence.bwv.io/camera=BWV-0007&evidence.bwv.io/recorded-at=2026-03-03T09:00:00Z"
  k -n "$TENANT_NS" annotate evidencebucket/westminster --overwrite e2e.evidence.bwv.io/poke="$(date +%s)" >/dev/null
  wait_until 150 "clip-0005 moved by the new leader" s3_has "$COOL" 2026/03/03/BWV-0007/clip-0005.mp4
  # the standby, waiting for minutes, takes a released Lease before the pod started to
  # replace the leader may (that one leaves a free Lease one retry period to standbys)
  [[ "$new" == "$standby" ]] || fail "failover: the Lease went to $new, not to the standby $standby (their logs: $WORK/failover-*.log)"
  proof "failover: leader $old deleted (it released the Lease on SIGTERM); the standby $new took it after ${duration}s (lease duration ${lease_s}s), not the replacement pod, and the sweep went on (clip-0005 moved to cool)"
  k -n "$OP_NS" rollout status deploy/"$RELEASE" --timeout=120s >/dev/null
}

prove_metrics() {
  local m
  m="$(metrics_of_service)" || fail "the metrics Service did not answer"
  grep -q '^evidence_operator_' <<<"$m" || fail "no evidence_operator_ metrics through the Service"
  proof "metrics-through-service: $(grep -c '^evidence_operator_' <<<"$m") evidence_operator_ samples from Service $RELEASE-metrics; $(grep -m1 -E '^evidence_operator_actions_total' <<<"$m" || echo 'actions_total only on the leader')"
  # the ServiceMonitor's selector (rendered with serviceMonitor.enabled) matches the Service
  local sel svc_labels
  sel="$(helm_ template "$RELEASE" "$E2E_ROOT/charts/evidence-operator" --namespace "$OP_NS" --set serviceMonitor.enabled=true \
    --show-only templates/servicemonitor.yaml | python3 -c 'import sys,yaml; d=yaml.safe_load(sys.stdin); print(",".join(f"{k}={v}" for k,v in d["spec"]["selector"]["matchLabels"].items()))' 2>/dev/null || true)"
  if [[ -n "$sel" ]]; then
    svc_labels="$(k -n "$OP_NS" get svc -l "$sel" -o jsonpath='{.items[*].metadata.name}')"
    [[ -n "$svc_labels" ]] || fail "the ServiceMonitor's selector $sel matches no Service"
    proof "servicemonitor-selector: $sel matches Service(s) $svc_labels (the ServiceMonitor CRD is not installed here: selector checked, not scraped)"
  else
    proof "servicemonitor-selector: not checked (helm template of the ServiceMonitor or python3 yaml unavailable)"
  fi
}

prove_rbac() {
  local sa="system:serviceaccount:$OP_NS:$RELEASE" can=() cannot=() v
  for v in "get evidencebuckets.evidence.bwv.io -n $TENANT_NS" "patch evidencebuckets.evidence.bwv.io --subresource=status -n $TENANT_NS" \
           "get secrets/westminster-s3 -n $TENANT_NS" "update leases.coordination.k8s.io/$RELEASE -n $OP_NS"; do
    # shellcheck disable=SC2086
    if k auth can-i $v --as "$sa" >/dev/null 2>&1; then can+=("$v"); else fail "the chart's RBAC should grant: $v"; fi
  done
  for v in "list secrets -n $TENANT_NS" "get secrets -n kube-system" "list secrets --all-namespaces" "create pods -n $OP_NS" \
           "delete evidencebuckets.evidence.bwv.io -n $TENANT_NS" "update leases.coordination.k8s.io/other -n $OP_NS" \
           "create clusterrolebindings" "delete customresourcedefinitions"; do
    # shellcheck disable=SC2086
    if k auth can-i $v --as "$sa" >/dev/null 2>&1; then fail "the operator's ServiceAccount can: $v"; else cannot+=("$v"); fi
  done
  proof "rbac: $sa can [$(IFS=';'; echo "${can[*]}")] and cannot [$(IFS=';'; echo "${cannot[*]}")]"
}

prove_upgrade() {
  local before after max_leaders watcher samples t_up=$SECONDS
  before="$(live_operator_pods)"
  # Watch the leaders by every pod's own metrics, terminating pods included (that is
  # when two could overlap), all through the roll-out. One line per sample: how many
  # lead, and who.
  (
    set +e
    while :; do leader_sample; sleep 0.2; done
  ) > "$WORK/leaders-during-upgrade" 2>/dev/null &
  watcher=$!
  log "helm upgrade --reuse-values --set s3.moveConcurrency=8 (the leader watch is pid $watcher)"
  if ! helm_ upgrade "$RELEASE" "$E2E_ROOT/charts/evidence-operator" --namespace "$OP_NS" --reuse-values \
      --set s3.moveConcurrency=8 --wait --timeout 240s >/dev/null; then
    kill "$watcher" 2>/dev/null || true
    fail "helm upgrade failed"
  fi
  k -n "$OP_NS" rollout status deploy/"$RELEASE" --timeout=180s >/dev/null || fail "the roll-out did not finish"
  wait_until 120 "only the new pods, both Ready" equals 2 ready_new_pods "$before"
  wait_until 60 "one leader after the upgrade (the Lease and the metrics agree)" one_leader_agrees
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  after="$(live_operator_pods)"
  samples="$(wc -l < "$WORK/leaders-during-upgrade")"
  max_leaders="$(cut -d' ' -f1 "$WORK/leaders-during-upgrade" | sort -n | tail -n 1)"
  (( samples > 0 )) || fail "the leader watch took no sample"
  (( ${max_leaders:-0} <= 1 )) || fail "two leaders at once during the upgrade: $(grep -m1 '^[2-9]' "$WORK/leaders-during-upgrade")"
  local p
  for p in $before; do [[ " $after " != *" $p "* ]] || fail "helm upgrade did not roll the pods ($before -> $after)"; done
  [[ "$(k -n "$OP_NS" get deploy "$RELEASE" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="EVIDENCE_MOVE_CONCURRENCY")].value}')" == 8 ]] ||
    fail "the new value is not in the Deployment"
  local leaderless; leaderless="$(grep -c '^0' "$WORK/leaders-during-upgrade" || true)"
  proof "helm-upgrade: s3.moveConcurrency 16->8 rolled pods [$before] -> [$after] in $((SECONDS - t_up))s; at most $max_leaders leader in each of $samples samples (every pod, terminating ones too; $leaderless samples with none, during hand-overs); now led by $(lease_holder)"
}
prove_uninstall() {
  local crds
  helm_ uninstall "$RELEASE" --namespace "$OP_NS" --wait --timeout 120s >/dev/null
  wait_until 90 "operator pods gone" equals "" k -n "$OP_NS" get pods -o name
  crds="$(k get crd -o name | grep -c 'evidence.bwv.io' || true)"
  (( crds == 5 )) || fail "expected the 5 CRDs to stay, found $crds"
  k -n "$TENANT_NS" get evidencebucket westminster >/dev/null || fail "the EvidenceBucket went with the chart"
  local key missing=0
  for key in "$COOL 2026/03/02/BWV-0099/clip-0002.mp4" "$LEGAL 2026/03/01/BWV-0042/clip-0001.mp4" \
             "$HOT recent/BWV-0100/clip-0003.mp4" "$COOL 2026/03/03/BWV-0007/clip-0005.mp4"; do
    # shellcheck disable=SC2086
    s3_has $key || { log "missing after uninstall: $key"; missing=1; }
  done
  (( missing == 0 )) || fail "clips went missing with helm uninstall"
  proof "helm-uninstall: release gone, $crds evidence.bwv.io CRDs and the EvidenceBucket/RetentionPolicy/LegalHold kept, every clip still in place"
}
