# imgfeed: one image holding the five programs, imgfeed-crawler, imgfeed-hasher,
# imgfeed-archiver, imgfeed-live and imgfeed-search, in /usr/local/bin.  The compose files in deploy/ pick the
# program of each service; by hand:
#
#   docker build -t imgfeed .
#   docker run --rm imgfeed imgfeed-hasher --help
#
# Stage 1 builds on Debian 12 with the -dev packages; stage 2 is Debian 12 slim
# with only the shared libraries the programs load (ldd) and the CA
# certificates, and runs as the unprivileged user imgfeed (uid and gid 10001).
# The context is the repository root; .dockerignore keeps build/, run/,
# deploy/, tests/ and .git out of it.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        librabbitmq-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libgd-dev libmicrohttpd-dev \
        libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev zlib1g-dev libssl-dev \
        libzstd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the five programs are built (no tests, no benchmarks); the install
# rules of their five folders (not the whole tree's, which would want the
# other programs built too) put them in /usr/local/bin and crawler/sites.json
# in /usr/local/share/imgfeed.  The hasher picks its AVX2 code at run time, so
# the image runs on any x86-64 machine.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DIMGFEED_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build /build -j "$(nproc)" \
        --target imgfeed-crawler imgfeed-hasher imgfeed-archiver imgfeed-live imgfeed-search \
 && for dir in crawler hasher archiver live search; do \
        DESTDIR=/out cmake --install "/build/$dir" --strip || exit 1; done

FROM debian:12-slim
# The packages of the libraries the five programs link (readelf -d: NEEDED),
# which bring their own dependencies; ca-certificates for the sites' HTTPS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librabbitmq4 libcurl4 libjson-c5 libpq5 libgd3 libmicrohttpd12 libjpeg62-turbo libpng16-16 \
        libwebp7 libwebpdemux2 libgif7 zlib1g libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 imgfeed \
 && useradd --uid 10001 --gid imgfeed --home-dir /var/lib/imgfeed --no-create-home \
        --shell /usr/sbin/nologin imgfeed \
 && install -d -o imgfeed -g imgfeed -m 0755 /var/lib/imgfeed /var/lib/imgfeed/state
COPY --from=build /out/usr/local/ /usr/local/
# The crawler's defaults inside the image: the sites file the build installed
# and the state directory.  Mount a volume on /var/lib/imgfeed/state (the
# compose files do): a new named volume takes the directory's owner, imgfeed;
# a host directory must belong to uid 10001.  There is no VOLUME line, so
# that hashers and archivers, which keep no state, get no anonymous volumes.
ENV IMGFEED_SITES=/usr/local/share/imgfeed/sites.json \
    IMGFEED_STATE_DIR=/var/lib/imgfeed/state
WORKDIR /var/lib/imgfeed
USER imgfeed:imgfeed
# No program runs by default: name one (imgfeed-crawler, imgfeed-hasher,
# imgfeed-archiver, imgfeed-live, imgfeed-search) as the command.
CMD ["imgfeed-crawler", "--help"]
