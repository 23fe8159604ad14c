# The gateway (and the sandbox simulators, for the compose stack) in a slim, non-root image.
#   docker build --build-arg BUILD_GIT_REVISION=$(git rev-parse --short=12 HEAD) -t transactions-gateway .
# Stage 1 compiles the dependencies from the manifests alone (a layer that stays cached until
# Cargo.toml/Cargo.lock change), stage 2 our crates, stage 3 is the runtime.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# jemalloc (the gateway's allocator) is built from its C sources: it needs make.
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

# --- dependency layer: manifests plus empty targets ---
COPY Cargo.toml Cargo.lock ./
# jemalloc's built-in options (JEMALLOC_SYS_WITH_MALLOC_CONF).
COPY .cargo .cargo
COPY crates/provider/Cargo.toml crates/provider/
COPY crates/okra/Cargo.toml crates/okra/
COPY crates/mono/Cargo.toml crates/mono/
COPY crates/mono-connect/Cargo.toml crates/mono-connect/
COPY crates/sandbox/Cargo.toml crates/sandbox/
COPY crates/gateway/Cargo.toml crates/gateway/build.rs crates/gateway/
COPY crates/bench/Cargo.toml crates/bench/
COPY tests/Cargo.toml tests/
RUN for c in crates/provider crates/okra crates/mono crates/mono-connect crates/sandbox crates/gateway crates/bench tests; do \
      mkdir -p $c/src && echo '//! stub' > $c/src/lib.rs; \
    done \
 && echo 'fn main() {}' > crates/gateway/src/main.rs \
 && echo 'fn main() {}' > crates/sandbox/src/main.rs \
 && for c in okra mono mono-connect; do mkdir -p crates/$c/benches && echo 'fn main() {}' > crates/$c/benches/normalize.rs; done \
 && cargo build --release --locked -p gateway -p sandbox \
 && rm -rf crates tests

# --- our crates ---
COPY crates crates
COPY tests tests
ARG BUILD_GIT_REVISION=unknown
ENV BUILD_GIT_REVISION=${BUILD_GIT_REVISION}
# COPY keeps the files' times, which may be older than the stub build: make cargo see them.
RUN find crates tests -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p gateway -p sandbox \
 && cp target/release/gateway target/release/sandbox /usr/local/bin/

# --- runtime ---
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /usr/local/bin/gateway /usr/local/bin/sandbox /usr/local/bin/
COPY gateway.example.toml /etc/gateway/gateway.example.toml
USER 10001:10001
ENV LOG_FORMAT=json GATEWAY_SERVER__BIND=0.0.0.0:8080
# jemalloc gives freed pages back at once (built in: .cargo/config.toml), so RSS follows the
# cache's budget after a burst of fills (README: Memory; docs/performance.md section 5).
EXPOSE 8080 9100
# Liveness only: readiness (/readyz) is for load balancers, which take a replica out without
# restarting it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["--config", "/etc/gateway/gateway.toml"]
