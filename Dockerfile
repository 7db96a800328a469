# Multi-stage build: compile with the Rust toolchain, run on a slim Debian as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY scripts ./scripts
COPY templates ./templates
COPY assets ./assets
# Cargo.toml names the benchmark target: its file must exist for any build.
COPY benches ./benches
RUN cargo build --release --locked --bin lockout

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home lockout
COPY --from=build /src/target/release/lockout /usr/local/bin/lockout
COPY lockout.example.toml /etc/lockout/lockout.example.toml
USER lockout
ENV LOCKOUT_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["lockout"]
CMD ["serve"]
