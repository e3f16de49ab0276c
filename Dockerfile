# syntax=docker/dockerfile:1
# The evidence-operator image: a static (musl) binary on distroless, non-root, no shell.
#
#   docker build -t ghcr.io/evidence-operator/evidence-operator:0.1.0 .
#
# (Not built in this repository's CI machine, which has no container engine; the kind
# e2e workflow in .github/workflows/e2e-kind.yaml builds and runs it.)

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools cmake clang \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p evidence-operator --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/evidence-operator /evidence-operator

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="evidence-operator" \
      org.opencontainers.image.description="Keeps body-worn video evidence in the right UK S3 storage tier for as long as the law needs it" \
      org.opencontainers.image.source="https://github.com/evidence-operator/evidence-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /evidence-operator /usr/local/bin/evidence-operator
# distroless "nonroot": uid/gid 65532, matching the chart's securityContext
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/evidence-operator"]
CMD ["run"]
