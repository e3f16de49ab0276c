# syntax=docker/dockerfile:1
# The evidence-operator image: the glibc release binary with the shared libraries it
# links (as distroless "cc" ships them) on an empty base, non-root (65532), no shell.
#
#   docker build -t ghcr.io/evidence-operator/evidence-operator:0.1.0 .
#
# One recipe, two ways in. The root filesystem is assembled by image/rootfs.sh; the
# final stage (FROM scratch + that directory + the user, ports and entrypoint below) is
# the same whichever way the directory was made:
#   - here, in the `build` stage (CI, the kind e2e, releases: needs the rust image);
#   - by `make image` on a machine without a registry: it builds the binary and runs
#     image/rootfs.sh on the host, then builds this Dockerfile with buildah and
#     --build-arg ROOTFS=rootfs-from-context over target/image/ (the rust stage is not
#     used, so nothing is pulled). make e2e-node runs that image on a real kubelet.

ARG RUST_VERSION=1.95
ARG ROOTFS=rootfs-from-build

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p evidence-operator \
 && image/rootfs.sh target/release/evidence-operator /rootfs

FROM scratch AS rootfs-from-build
COPY --from=build /rootfs/ /

# make image: the build context is target/image/, holding rootfs/ from image/rootfs.sh
FROM scratch AS rootfs-from-context
COPY rootfs/ /

FROM ${ROOTFS}
LABEL org.opencontainers.image.title="evidence-operator" \
      org.opencontainers.image.description="Keeps body-worn video evidence in the right UK S3 storage tier for as long as the law needs it" \
      org.opencontainers.image.source="https://github.com/evidence-operator/evidence-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid/gid 65532 ("nonroot" in the image's /etc/passwd), matching the chart's securityContext
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/evidence-operator"]
CMD ["run"]
