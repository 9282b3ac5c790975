# The nest image for `nest launch k8s` (see docs/scale-engines.md): build the release binary on a Debian-based Rust
# image, then copy it alone onto a slim Debian base and run it as a non-root user. nest needs no system CA store
# (its TLS roots are built in), no shell and no other file: the final stage adds nothing but the binary.
#
#   docker build -t registry.example.com/nest:0.1.0 .
#
# Build stage: the workspace's locked dependencies, the `nest` binary only.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p nest \
    && install -D -m 0755 target/release/nest /out/nest

# Run stage: Debian slim (glibc, which the binary links against) and the binary.
FROM debian:bookworm-slim
COPY --from=build /out/nest /usr/local/bin/nest
# The user id the manifests of `nest launch k8s` expect (runAsUser 10001, runAsNonRoot).
USER 10001:10001
WORKDIR /nest/project
ENTRYPOINT ["/usr/local/bin/nest"]
CMD ["--help"]
