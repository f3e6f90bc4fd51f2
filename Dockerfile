# SPDX-License-Identifier: GPL-2.0
# lifemon image, three stages on Debian 12. deps: the packages that build lifemon (the build
# part of scripts/install-deps.sh, which configure needs whole, not the script itself: it also
# installs browsers, qemu and benchmark tools). build: the release binary, and the Debian
# packages that own the shared libraries it loads. Last: those packages and the binary, nothing
# else. Run it with the privileges BPF needs and the host's cgroups (README, "Container image"):
#   podman run --privileged --pid=host --network=host -v /sys/fs/cgroup:/sys/fs/cgroup:ro lifemon
# tests/it_image.sh builds and runs it.
FROM debian:12 AS deps
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends build-essential cmake make pkg-config clang llvm bpftool \
	libbpf-dev libelf-dev zlib1g-dev libck-dev libwebsockets-dev liburing-dev libcap-dev \
	libnats-dev libcmocka-dev libjansson-dev libssl-dev && \
	apt-get clean && rm -rf /var/lib/apt/lists/*

FROM deps AS build
WORKDIR /src
COPY . .
RUN cmake --preset release && cmake --build build-release -j"$(nproc)" --target lifemon
# ldd names the libraries as the loader finds them (/lib/... or /usr/lib/...); dpkg knows each
# file under the path its package ships, which differs for some since Debian merged /usr.
RUN set -e; ldd build-release/lifemon | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' > /tmp/libs; \
	for lib in $(cat /tmp/libs); do \
		dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || \
		dpkg -S "${lib#/usr}" 2>/dev/null || { echo "no package owns $lib" >&2; exit 1; }; \
	done > /tmp/owners; \
	sed -n 's/^\([^:, ]*\)[:,].*/\1/p' /tmp/owners | sort -u > /runtime-packages; \
	test -s /runtime-packages; cat /runtime-packages

FROM debian:12
COPY --from=build /runtime-packages /usr/local/share/lifemon/runtime-packages
# apt-get clean: the package caches (/var/cache/apt/*.bin) are 70 MB, more than the libraries.
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends $(cat /usr/local/share/lifemon/runtime-packages) && \
	apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build-release/lifemon /usr/local/bin/lifemon
# Every library resolves, or the build fails here rather than at the first run.
RUN ! ldd /usr/local/bin/lifemon | grep 'not found'
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/lifemon"]
CMD ["--listen", "127.0.0.1:8080", "--stdout"]
