# visits-server and visitsctl on Debian bookworm-slim.
#   buildah bud --format docker -t visits:0.2.0 .      (or: docker build -t visits:0.2.0 .)
#   podman run -p 8080:8080 -v visits-data:/data visits:0.2.0
# Offline (no registry): deploy/image/base-image.sh builds debian:bookworm-slim from the
# Debian mirror first. See deploy/ for the Kubernetes manifests.
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: compile, run the unit tests, stage exactly what the runtime needs ----------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        cmake make gcc libc6-dev pkg-config libh2o-evloop-dev libssl-dev libjson-c-dev \
        libcmocka-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
        -DCMAKE_INSTALL_LIBDIR=lib -DVISITS_BUILD_FUZZ=OFF \
    && cmake --build /build -j"$(nproc)"
# Serially: some unit tests measure concurrency and timing.
RUN ctest --test-dir /build -L unit --output-on-failure
# Stage the runtime files: the two programs and the shared library they load.
RUN DESTDIR=/install cmake --install /build \
    && mkdir -p /rootfs/usr/local/bin /rootfs/usr/local/lib \
    && cp /install/usr/local/bin/visits-server /install/usr/local/bin/visitsctl \
        /rootfs/usr/local/bin/ \
    && cp -P /install/usr/local/lib/libvisits.so.* /rootfs/usr/local/lib/ \
    && strip --strip-unneeded /rootfs/usr/local/bin/* /rootfs/usr/local/lib/libvisits.so.*.*

# ---- runtime: the runtime libraries, the two programs, a non-root numeric user --------
FROM ${DEBIAN_IMAGE}
ARG VERSION=0.2.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="visits" \
      org.opencontainers.image.description="visits-server: a crash-safe, durable visit counter over HTTP (libvisits + libh2o)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
RUN apt-get update \
    && apt-get install -y --no-install-recommends libh2o-evloop0.13 libjson-c5 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
        /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    && groupadd --gid 10001 visits \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin visits \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /rootfs/ /
RUN ldconfig && visits-server --version && visitsctl --version
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/visits-server"]
