# ciam in a container: built in one stage, run in another that holds the
# binary and the C runtime only (no shell, no package manager), as a
# non-root user, with its data in a volume. No container engine runs where
# ciam is developed, so this file is checked by reading it; see the README.
#
#   docker build -t ciam .
#   docker run -p 8080:8080 -v ciam-data:/var/lib/ciam -e CIAM_ISSUER=https://login.example.com ciam

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ciam \
 && install -D -m 0755 target/release/ciam /out/ciam \
 && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ciam /usr/local/bin/ciam
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/ciam
# The embedded database and its keys; mount a volume here (or set
# CIAM_DATABASE_URL to PostgreSQL for several instances).
VOLUME ["/var/lib/ciam"]
ENV CIAM_DATA_DIR=/var/lib/ciam \
    CIAM_LISTEN=0.0.0.0:8080 \
    CIAM_METRICS_LISTEN=0.0.0.0:9464 \
    CIAM_LOG_FORMAT=json
USER nonroot:nonroot
EXPOSE 8080 9464
# `ciam health` asks the server's own /healthz (there is no shell or curl).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/ciam", "health"]
ENTRYPOINT ["/usr/local/bin/ciam"]
CMD ["serve"]
