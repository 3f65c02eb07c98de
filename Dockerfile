# One image for every role: `clicktrail redirector|ingest|processor|query` (and `serve`).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin clicktrail

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/clicktrail clicktrail \
    && mkdir -p /var/lib/clicktrail && chown clicktrail /var/lib/clicktrail
COPY --from=build /src/target/release/clicktrail /usr/local/bin/clicktrail
USER clicktrail
WORKDIR /var/lib/clicktrail
ENV CLICKTRAIL_DATA_DIR=/var/lib/clicktrail
ENTRYPOINT ["clicktrail"]
