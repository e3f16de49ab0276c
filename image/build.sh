#!/usr/bin/env bash
# make image: the operator image built on this machine with no registry access, from
# the Dockerfile's final stage (see the Dockerfile: one recipe, image/rootfs.sh).
#
#   image/build.sh [--out DIR] [--tag NAME:TAG]
#     --out DIR    where the rootfs, buildah's storage and the archive go (default target/image)
#     --tag        image name (default evidence-operator:dev); the archive names it
#                  docker.io/library/NAME:TAG, which is what a pod's `image: NAME:TAG` means
# Writes DIR/evidence-operator.tar (docker-archive, for `ctr images import` or
# `docker load`) and prints its size. Needs cargo and buildah (apt-get install buildah).
# Cargo's target directory: CARGO_TARGET_DIR, else target/. EVIDENCE_OPERATOR_BINARY=PATH
# uses a release binary built before instead of building one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/target/image"
tag="evidence-operator:dev"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[image] %s\n' "$*" >&2; }
command -v buildah >/dev/null || { log "buildah is missing: apt-get install buildah"; exit 1; }

start=$SECONDS
if [[ -n "${EVIDENCE_OPERATOR_BINARY:-}" ]]; then
  # a release binary built before (CI's build job, or a run that must not rebuild)
  bin="$EVIDENCE_OPERATOR_BINARY"
  log "using the binary $bin (EVIDENCE_OPERATOR_BINARY; not built here)"
  [[ -x "$bin" ]] || { log "$bin is not an executable"; exit 1; }
else
  log "cargo build --release -p evidence-operator"
  (cd "$root" && cargo build --locked --release -q -p evidence-operator)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/evidence-operator"
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
"$here/rootfs.sh" "$bin" "$out/rootfs"

# buildah's own storage under $out (vfs: plain directories, nothing mounted)
storage=(--root "$out/storage" --runroot "$out/runroot" --storage-driver vfs)
buildah "${storage[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
log "buildah bud (the Dockerfile's final stage over $out/rootfs)"
buildah "${storage[@]}" bud --quiet --layers=false -f "$root/Dockerfile" \
  --build-arg ROOTFS=rootfs-from-context -t "$tag" "$out" > /dev/null
name="${tag%%:*}" version="${tag##*:}"
[[ "$name" == */* ]] || name="docker.io/library/$name"
rm -f "$out/evidence-operator.tar"
buildah "${storage[@]}" push --quiet "$tag" "docker-archive:$out/evidence-operator.tar:$name:$version"

# what the image is: user, entrypoint, no shell
config="$(buildah "${storage[@]}" inspect --type image --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}' "$tag")"
[[ "$config" == '65532:65532 [/usr/local/bin/evidence-operator]' ]] || { log "unexpected image config: $config"; exit 1; }
if [[ -e "$out/rootfs/bin/sh" || -e "$out/rootfs/usr/bin/sh" ]]; then log "the image has a shell"; exit 1; fi
buildah "${storage[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
rm -rf "$out/storage" "$out/runroot"

log "$name:$version: user $config; rootfs $(du -sh --apparent-size "$out/rootfs" | cut -f1)" \
  "(binary $(du -h --apparent-size "$bin" | cut -f1)), archive $out/evidence-operator.tar" \
  "$(du -h --apparent-size "$out/evidence-operator.tar" | cut -f1) ($((SECONDS - start))s)"
