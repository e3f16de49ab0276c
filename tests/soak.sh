#!/usr/bin/env bash
# make soak: look for failures that come by chance, by running things many times.
#
#   tests/soak.sh suite RUNS        the integration suite RUNS times in a row, each run as
#                                   `make test` does it (servers up, every integration
#                                   test, servers down), on warm caches
#   tests/soak.sh servers STARTS [--parallel P]
#                                   STARTS start-ups of tests/servers/up.sh + down.sh, P
#                                   at a time (default 3) so that their port choices and
#                                   binds interleave; every other start-up is first handed
#                                   a port that is already taken (EVIDENCE_SERVERS_TAKEN_PORT),
#                                   so the retry path runs too. Each start-up is checked:
#                                   the apiserver answers its own token, each MinIO its
#                                   own credentials, the UK MinIO says eu-west-2.
#
# Prints, at the end, the failures by test (or by start-up step) and the counts.
# Logs: target/soak/<mode>-<n>.log (kept for failed runs only).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/target/soak"
mkdir -p "$out"

log() { printf '[soak] %s\n' "$*" >&2; }
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

mode="${1:-}"; count="${2:-}"
[[ -n "$mode" && "$count" =~ ^[0-9]+$ ]] || usage
shift 2
parallel=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --parallel) parallel="$2"; shift 2 ;;
    *) usage ;;
  esac
done

declare -A failures=()
passed=0 failed=0
start_all=$SECONDS

summary() {
  echo
  log "$mode: $passed of $count passed, $failed failed ($((SECONDS - start_all))s)"
  if (( ${#failures[@]} > 0 )); then
    log "failures by test or step:"
    for k in "${!failures[@]}"; do printf '  %3d  %s\n' "${failures[$k]}" "$k"; done | sort -rn >&2
  fi
  (( failed == 0 ))
}

soak_suite() {
  log "building once, and the tools (warm caches from here on) ..."
  "$here/test.sh" tools build || exit 1
  for ((i = 1; i <= count; i++)); do
    local logf="$out/suite-$i.log" t=$SECONDS
    if TEST_SERVERS_DIR="$out/servers-suite" "$here/test.sh" integration > "$logf" 2>&1; then
      passed=$((passed + 1)); rm -f "$logf"
      log "run $i/$count passed ($((SECONDS - t))s)"
    else
      failed=$((failed + 1))
      mapfile -t tests < <(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$logf" | sort -u)
      if (( ${#tests[@]} == 0 )); then tests=("(no test failed: start-up or harness, see $logf)"); fi
      for t_ in "${tests[@]}"; do failures[$t_]=$(( ${failures[$t_]:-0} + 1 )); done
      log "run $i/$count FAILED ($((SECONDS - t))s): ${tests[*]} (log: $logf)"
    fi
  done
}

# One start-up, checked: prints nothing and succeeds, or names the failed step.
start_once() { # n
  local n="$1" d="$out/servers-$1" blocker="" taken="" step=""
  if (( n % 2 == 0 )); then
    # a port that stays taken for the whole start-up: the first attempt of every server
    # is handed it and must fail to bind it, then be started again elsewhere
    exec {bfd}< <(python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(600)')
    read -r taken <&"$bfd"; blocker=$!
  fi
  if ! EVIDENCE_SERVERS_TAKEN_PORT="$taken" "$here/servers/up.sh" --dir "$d" > "$d.log" 2>&1; then
    step="up.sh failed"
  else
    # shellcheck disable=SC1091
    . "$d/env"
    if ! "$EVIDENCE_TEST_KUBECTL" --kubeconfig "$KUBECONFIG" get namespace default -o name >> "$d.log" 2>&1; then
      step="kube-apiserver does not accept this start-up's token"
    elif ! curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
          "$AWS_ENDPOINT_URL/" >> "$d.log" 2>&1; then
      step="UK MinIO does not accept this start-up's credentials"
    elif ! curl -sf --aws-sigv4 "aws:amz:$EVIDENCE_TEST_NON_UK_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
          "$EVIDENCE_TEST_NON_UK_ENDPOINT/" >> "$d.log" 2>&1; then
      step="non-UK MinIO does not accept this start-up's credentials"
    elif [[ -n "$taken" ]] && ! grep -q "was taken before it could bind it" "$d.log"; then
      step="a taken port was not retried"
    elif [[ -n "$taken" ]] && grep -q ":$taken\b" "$d/env"; then
      step="the taken port was handed out"
    fi
  fi
  "$here/servers/down.sh" --dir "$d" >> "$d.log" 2>&1
  rmdir "$d" 2>/dev/null # emptied by down.sh
  [[ -n "$blocker" ]] && kill "$blocker" 2>/dev/null
  if [[ -n "$step" ]]; then echo "$step"; return 1; fi
  rm -f "$d.log"
}

soak_servers() {
  "$here/servers/install.sh" etcd kube-apiserver kubectl minio > /dev/null || exit 1
  local n=0 results="$out/servers-results"
  : > "$results"
  while (( n < count )); do
    local batch=() t=$SECONDS
    for ((j = 0; j < parallel && n < count; j++)); do
      n=$((n + 1))
      ( if step=$(start_once "$n"); then echo "ok $n" >> "$results"; else echo "fail $n $step" >> "$results"; fi ) &
      batch+=($!)
    done
    wait "${batch[@]}"
    log "start-ups $((n - ${#batch[@]} + 1))-$n done ($((SECONDS - t))s)"
  done
  passed=$(grep -c '^ok ' "$results")
  failed=$(grep -c '^fail ' "$results")
  while read -r _ num step; do
    failures["$step"]=$(( ${failures[$step]:-0} + 1 ))
    log "start-up $num: $step (log: $out/servers-$num.log)"
  done < <(grep '^fail ' "$results")
}

case "$mode" in
  suite) soak_suite ;;
  servers) soak_servers ;;
  *) usage ;;
esac
summary
