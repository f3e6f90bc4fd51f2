# SPDX-License-Identifier: GPL-2.0
# lifemon image: build on Debian 12 with the project's own dependency script, run privileged
# with the host PID namespace: docker run --privileged --pid=host --network=host lifemon
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN bash scripts/install-deps.sh && cmake --preset release && cmake --build build-release -j"$(nproc)" --target lifemon

FROM debian:12
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	libbpf1 libelf1 zlib1g libck0 libwebsockets17 liburing2 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build-release/lifemon /usr/local/bin/lifemon
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/lifemon"]
CMD ["--listen", "127.0.0.1:8080", "--stdout"]
