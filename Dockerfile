# Build stage: a release build of cadbridge. The whole context is copied
# (.dockerignore leaves out target/, .git, .env and databases), so no file the
# manifest or the code needs (benches/, migrations/, ...) can be missed;
# .ci/docker-context-check proves it without a Docker engine.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cadbridge

# Runtime stage: the binary alone on a small base, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data cadbridge \
    && mkdir -p /data && chown cadbridge /data
COPY --from=build /src/target/release/cadbridge /usr/local/bin/cadbridge
USER cadbridge
WORKDIR /data
ENV LISTEN_ADDR=0.0.0.0:30150 \
    DATABASE_URL=sqlite:///data/cadbridge.db
VOLUME ["/data"]
EXPOSE 30150
ENTRYPOINT ["cadbridge"]
CMD ["serve"]
