#!/usr/bin/env bash
# Assemble the root filesystem of the operator image: the one recipe shared by the
# Dockerfile (its build stage runs this script, its final stage is FROM scratch + this
# directory) and by `make image` on machines without a registry (the same Dockerfile's
# final stage over the directory this script writes here).
#
#   image/rootfs.sh BINARY OUTDIR
#
# What goes in, as distroless "cc" has it: the glibc release binary, the shared
# libraries `ldd` lists for it (at the paths the dynamic loader looks for them), the CA
# bundle, /etc/passwd and /etc/group naming the non-root user 65532 ("nonroot"), an
# nsswitch.conf, and an empty /tmp. No shell, no package manager, nothing else.
set -euo pipefail

bin="${1:?usage: image/rootfs.sh BINARY OUTDIR}"
out="${2:?usage: image/rootfs.sh BINARY OUTDIR}"

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp" "$out/home/nonroot"
install -m 0755 "$bin" "$out/usr/local/bin/evidence-operator"

# every shared object the binary needs (ldd lists `name => /path (addr)` and the loader
# as `/lib64/ld-linux-x86-64.so.2 (addr)`), copied as regular files under the listed path
libs="$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)"
[[ -n "$libs" ]] || { echo "rootfs.sh: ldd lists no libraries for $bin (static? then nothing to copy)" >&2; }
for lib in $libs; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done

cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
cat > "$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$out/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
GROUP
echo 'hosts: files dns' > "$out/etc/nsswitch.conf"
chmod 1777 "$out/tmp"
chown -R 0:0 "$out"
chown 65532:65532 "$out/home/nonroot"
echo "rootfs.sh: $out: $(du -sh "$out" | cut -f1) ($(echo "$libs" | wc -w) shared libraries)" >&2
