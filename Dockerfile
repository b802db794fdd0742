# Builds the `tessera` server. The runtime image holds only the binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tessera-api --bin tessera

FROM debian:bookworm-slim
# The system's roots for outgoing HTTPS (upstream identity providers, back-channel logout
# receivers, SMTP over TLS) and OpenSSL, which librdkafka links for Kafka's TLS and SASL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /var/lib/tessera tessera \
    && mkdir -p /var/lib/tessera && chown tessera /var/lib/tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
USER tessera
ENV TESSERA_LISTEN=0.0.0.0:8080 \
    TESSERA_DATA_DIR=/var/lib/tessera
EXPOSE 8080
VOLUME ["/var/lib/tessera"]
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
