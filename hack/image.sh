#!/usr/bin/env bash
# `make image`: the operator's container image, built without a container engine.
#
#   1. the binary, statically linked (glibc's static libc, rustls: no shared library and no
#      OpenSSL at run time), built without the BIG-IP simulator (--no-default-features), in
#      the `image` profile (release, symbols stripped);
#   2. hack/image (Go, go-containerregistry from the Go module proxy) packs it with the CA
#      bundle and passwd entries into one layer, user 65532, and writes
#        dist/image/oci                          an OCI image layout (crane, skopeo, podman, oras)
#        dist/image/bigip-operator-<v>.docker.tar `docker load -i` / `podman load -i`
#   3. `hack/image.sh test` also runs hack/image's tests on the result: the image read back,
#      its filesystem unpacked into an empty directory and the binary run from there
#      (`--version`, `run --help`, `crdgen`; in a chroot when run as root), size < 25 MB.
#
# The Dockerfile builds the same image with Docker/Buildah. IMAGE=name:tag and IMAGE_OUT=dir
# override the defaults; SOURCE_DATE_EPOCH sets the timestamps (0 by default: reproducible).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${BIGIP_OPERATOR_CACHE:-$HOME/.cache/bigip-operator}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" GOWORK=off
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
image="${IMAGE:-bigip-operator:$version}"
out="${IMAGE_OUT:-dist/image}"
mkdir -p "$out" "$cache/bin"
out="$(cd "$out" && pwd)"

case "$(uname -m)" in
  x86_64) target=x86_64-unknown-linux-gnu ;;
  aarch64) target=aarch64-unknown-linux-gnu ;;
  *) echo "image.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ ! -f "$ca_bundle" ]; then
  echo "image.sh: $ca_bundle missing (Debian: apt-get install ca-certificates)" >&2; exit 1
fi

log() { printf 'image.sh: [%3ds] %s\n' "$SECONDS" "$*" >&2; }

log "building the static binary ($target, profile image, no simulator)"
# --target keeps these RUSTFLAGS off build scripts and proc macros (they run on the host).
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --quiet --locked --profile image --target "$target" --no-default-features --bin bigip-operator
binary="$CARGO_TARGET_DIR/$target/image/bigip-operator"

log "building the packer (hack/image)"
(cd hack/image && go build -o "$cache/bin/imagepack" .)

log "packing $image"
"$cache/bin/imagepack" -binary "$binary" -ca-bundle "$ca_bundle" -tag "$image" -version "$version" -out "$out"

if [ "${1:-}" = test ]; then
  log "testing the image"
  (cd hack/image && IMAGE_DIR="$out" IMAGE_TAG="$image" IMAGE_VERSION="$version" go test -count=1 -v .)
fi
