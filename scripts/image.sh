#!/usr/bin/env bash
# Build the Sluice container image without any image registry: stage a root filesystem (the
# `sluice` binary, the shared libraries and dynamic loader it links against, CA certificates,
# passwd/group for UID 65532), then build the Containerfile FROM scratch with buildah and write
# an OCI archive.
#
#   scripts/image.sh                     release build, then target/image/sluice-VERSION.oci.tar
#   scripts/image.sh --binary PATH       use this binary instead of building (e.g. a debug build)
#   scripts/image.sh --stage-only        only stage target/image/context (for `docker build`)
#   scripts/image.sh --builder docker    build the staged context with `docker build`
#   scripts/image.sh --docker-archive F  also write a docker-archive (for kind/k3d/minikube image loading)
# Options: --tag TAG (default: the workspace version), --name NAME (default ghcr.io/sluice-dev/sluice),
#          --context DIR (default target/image/context), --output FILE, --no-install,
#          --print-ref (print the image reference NAME:TAG and exit).
# Prints the image reference, archive path and sizes. Exit 0 on success; 3 when buildah or
# umoci are missing and cannot be installed (the start-up test then reports a skip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'image.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || die "no version in Cargo.toml [workspace.package]"
name="ghcr.io/sluice-dev/sluice"
tag="$version"
binary=""
context="$ROOT/target/image/context"
output=""
builder="buildah"
stage_only=0
install=1
print_ref=0
docker_archive=""

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --name) name="$2"; shift 2 ;;
        --context) context="$2"; shift 2 ;;
        --output) output="$2"; shift 2 ;;
        --builder) builder="$2"; shift 2 ;;
        --stage-only) stage_only=1; shift ;;
        --no-install) install=0; shift ;;
        --print-ref) print_ref=1; shift ;;
        --docker-archive) docker_archive="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
if [ "$print_ref" -eq 1 ]; then printf '%s:%s\n' "$name" "$tag"; exit 0; fi
output="${output:-$ROOT/target/image/sluice-$tag.oci.tar}"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# Reproducible file times and image creation time: the commit time (or 0 outside git).
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# --- the binary ------------------------------------------------------------
if [ -z "$binary" ]; then
    log "cargo build --release --locked -p sluice-controller --bin sluice"
    cargo build --release --locked -p sluice-controller --bin sluice
    binary="$ROOT/target/release/sluice"
fi
[ -x "$binary" ] || die "no executable at $binary"

# --- stage the root filesystem --------------------------------------------
rootfs="$context/rootfs"
rm -rf "$context"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"   # mount point for an emptyDir; the root filesystem itself is read-only
# Debug sections are of no use in the image (a dev-profile binary shrinks several times).
if command -v objcopy >/dev/null 2>&1; then
    objcopy --strip-debug "$binary" "$rootfs/usr/local/bin/sluice"
else
    cp "$binary" "$rootfs/usr/local/bin/sluice"
fi
chmod 0755 "$rootfs/usr/local/bin/sluice"

# Shared libraries, as the dynamic loader resolves them on this machine. `ldd` prints
# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the loader as "/lib64/ld-linux-x86-64.so.2 (0x...)".
# A statically linked binary prints "not a dynamic executable" (and exits 1): nothing to copy.
libs="$(ldd "$binary" 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' || true)"
for lib in $libs; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"   # the file itself, not the distribution's symlink chain
done
# glibc >= 2.34 carries the `files` and `dns` NSS modules inside libc.so.6 (glibc NEWS 2.34),
# so name resolution needs only this file; /etc/hosts and /etc/resolv.conf come from the kubelet.
printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"

ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || die "no CA bundle at $ca (apt-get install ca-certificates)"
cp -L "$ca" "$rootfs$ca"
printf 'root:x:0:0:root:/root:/sbin/nologin\nsluice:x:65532:65532:sluice:/nonexistent:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nsluice:x:65532:\n' > "$rootfs/etc/group"
cp "$ROOT/Containerfile" "$context/Containerfile"
log "staged $context ($(du -sh "$rootfs" | cut -f1), libraries: ${libs//$'\n'/ })"
[ "$stage_only" -eq 0 ] || exit 0

ref="$name:$tag"
build_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision")
mkdir -p "$(dirname "$output")"

# --- build -----------------------------------------------------------------
if [ "$builder" = "docker" ]; then
    docker build "${build_args[@]}" -t "$ref" "$context"
    log "built $ref with docker"
    exit 0
fi
[ "$builder" = "buildah" ] || die "unknown builder $builder (buildah or docker)"

if ! command -v buildah >/dev/null 2>&1 || ! command -v umoci >/dev/null 2>&1; then
    if [ "$install" -eq 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        log "installing buildah and umoci (Debian)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah umoci >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah umoci >/dev/null; } \
            || true
    fi
    if ! command -v buildah >/dev/null 2>&1 || ! command -v umoci >/dev/null 2>&1; then
        log "buildah/umoci not available (apt-get install buildah umoci as root)"
        exit 3
    fi
fi

# A private store under target/ (vfs: no overlay mounts needed), removed afterwards. FROM scratch
# with COPY only: nothing runs inside the image, so no container runtime is involved.
store="$ROOT/target/image/store"
rm -rf "$store"
bah=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
trap 'rm -rf "$store"' EXIT
"${bah[@]}" build --quiet --isolation chroot --timestamp "$epoch" --format oci \
    "${build_args[@]}" -t "$ref" "$context" >/dev/null
rm -f "$output"
"${bah[@]}" push --quiet "$ref" "oci-archive:$output:$ref"
if [ -n "$docker_archive" ]; then
    rm -f "$docker_archive"
    "${bah[@]}" push --quiet "$ref" "docker-archive:$docker_archive:$ref"
    log "docker-archive $docker_archive ($(du -h "$docker_archive" | cut -f1))"
fi

size="$(du -h "$output" | cut -f1)"
log "built $ref -> ${output#"$ROOT/"} ($size archive; revision $revision)"
printf '%s\n' "$output"
