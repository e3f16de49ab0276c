#!/usr/bin/env bash
# Stop exactly the processes tests/servers/up.sh started (by the PIDs it recorded)
# and remove their data.
#
#   tests/servers/down.sh [--dir DIR] [--keep-logs]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(cd "$here/../.." && pwd)/target/servers"
keep_logs=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --keep-logs) keep_logs=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -f "$dir/pids" ]] || exit 0

# The watchdog last (it may be the one running us), the apiserver before etcd.
mapfile -t entries < <(grep -v '^watchdog ' "$dir/pids" | tac)
pids=()
for entry in "${entries[@]}"; do
  pid="${entry##* }"
  # SeaweedFS takes ~16 s to stop on SIGTERM (its filer's gRPC graceful-stop timeout),
  # and its data is thrown away: killed outright.
  signal=TERM; [[ "${entry%% *}" == seaweedfs ]] && signal=KILL
  if kill -0 "$pid" 2>/dev/null; then kill -s "$signal" "$pid" 2>/dev/null && pids+=("$pid"); fi
done
for _ in $(seq 1 50); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  (( alive )) || break
  sleep 0.2
done
for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
watchdog="$(sed -n 's/^watchdog //p' "$dir/pids")"
rm -f "$dir/pids" "$dir/env"
rm -rf "$dir/etcd" "$dir/minio" "$dir/minio-us" "$dir/seaweedfs" "$dir/seaweedfs-s3.json" "$dir/pki" "$dir/kubeconfig" \
  "$dir/catalogues"
# SeaweedFS's gRPC unix sockets are always /tmp/seaweedfs-<server>-grpc-<port>.sock (no
# flag moves them) and outlive it: those of the ports it was given.
if [[ -f "$dir/seaweedfs.ports" ]]; then
  for port in $(cat "$dir/seaweedfs.ports"); do rm -f /tmp/seaweedfs-*-"$port".sock; done
  rm -f "$dir/seaweedfs.ports"
fi
[[ -n "$keep_logs" ]] || rm -f "$dir"/*.log
# Nothing else is left in a directory the servers had to themselves: remove it too.
rmdir "$dir" 2>/dev/null || true
if [[ -n "$watchdog" && "$watchdog" != "$PPID" ]]; then kill "$watchdog" 2>/dev/null || true; fi
echo "[servers] stopped ${#pids[@]} server process(es) from $dir" >&2
