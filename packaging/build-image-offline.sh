#!/usr/bin/env bash
# Build the logship container image without a registry: the runtime stage of
# packaging/Dockerfile (its ENV, USER, EXPOSE, ENTRYPOINT, CMD, taken from the
# file itself) on a base assembled from this Debian machine instead of the
# distroless image, with a binary that is already built. Used by
# tests/ops/ops_container.rs and by anyone building where no base image can
# be pulled.
#
#   packaging/build-image-offline.sh BINARY TAG [--size]
#
# The base holds what distroless cc-debian12 holds for a Rust binary: the
# binary's shared libraries (glibc, libgcc_s, libm, the loader, as `ldd`
# lists them), the CA bundle, and /etc/passwd + /etc/group with the
# `nonroot` user (65532). No shell, no package manager.
#
# Builder: podman (daemonless), with the flags in $PODMAN_FLAGS (the test
# passes a private --root/--runroot and vfs storage). --size prints the
# image's size compressed with gzip -6 (`podman save`, the layers as a
# registry stores them) in bytes on the last line.
set -euo pipefail

bin="${1:?usage: build-image-offline.sh BINARY TAG [--size]}"
tag="${2:?usage: build-image-offline.sh BINARY TAG [--size]}"
here="$(cd "$(dirname "$0")" && pwd)"
read -r -a podman <<< "podman ${PODMAN_FLAGS:-}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/logship" "$root/home/nonroot"
# Stripped, as the Dockerfile installs it.
install -s -m 0755 "$bin" "$root/usr/bin/logship"
# The loader and every library the binary links, at the paths it expects.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/var/lib/logship" "$root/home/nonroot"

# The Dockerfile's last stage, with its FROM and its COPY --from=build
# replaced by the assembled base.
{
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    awk '/^FROM /{stage=NR} {lines[NR]=$0} END {
        for (i = stage + 1; i <= NR; i++) {
            l = lines[i]
            if (l ~ /^COPY --from=build/ || l ~ /^#/ || l ~ /^$/) continue
            print l
        }
    }' "$here/Dockerfile"
} > "$ctx/Containerfile"

"${podman[@]}" build -q -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
echo "built $tag from the runtime stage of packaging/Dockerfile:" >&2
sed 's/^/  /' "$ctx/Containerfile" >&2
if [ "${3:-}" = "--size" ]; then
    "${podman[@]}" save --format docker-archive "$tag" | gzip -6 | wc -c
fi
