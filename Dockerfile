# QueueLab staging image.
#
#   docker build -t queuelab .
#   docker run -p 8080:8080 -v queuelab-data:/var/lib/queuelab queuelab
#
# The builder runs the same command as the README (`./dev build --release`),
# which CI exercises on every change; the runtime stage holds only the
# binary and the dashboard bundle.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN ./dev build --release \
 && mkdir -p /out/bin /out/share/queuelab \
 && cp target/release/queuelab /out/bin/ \
 && cp -r frontend/dist /out/share/queuelab/dashboard

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 queuelab \
 && useradd --system --uid 10001 --gid queuelab --home-dir /var/lib/queuelab --no-create-home queuelab \
 && mkdir -p /var/lib/queuelab \
 && chown queuelab:queuelab /var/lib/queuelab
# The binary finds the dashboard at ../share/queuelab/dashboard next to itself.
COPY --from=builder /out/bin/queuelab /usr/local/bin/queuelab
COPY --from=builder /out/share/queuelab /usr/local/share/queuelab
ENV QUEUELAB_BIND=0.0.0.0 \
    QUEUELAB_PORT=8080 \
    QUEUELAB_DATA_DIR=/var/lib/queuelab \
    QUEUELAB_LOG_JSON=true
USER queuelab:queuelab
WORKDIR /var/lib/queuelab
VOLUME ["/var/lib/queuelab"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["queuelab", "healthcheck"]
ENTRYPOINT ["queuelab"]
CMD ["serve"]
