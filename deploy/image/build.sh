#!/usr/bin/env bash
# Builds the ha-metrics-server container image on this machine, without any registry:
# a statically linked release binary (glibc, +crt-static; names resolve in Rust, not through
# NSS) in an image made `buildah from scratch`: one file, /ha-metrics-server, run as uid 65534,
# no shell, no libc, nothing else. Writes an OCI archive:
#
#   deploy/image/build.sh                   # -> target/image/ha-metrics-server.oci.tar
#   OUT=/tmp/x.tar IMAGE=my.registry/ha-metrics-server:dev deploy/image/build.sh
#
# Load it into a registry the cluster pulls from (see deploy/README.md):
#   skopeo copy oci-archive:target/image/ha-metrics-server.oci.tar docker://REGISTRY/ha-metrics-server:v0.1.0
#
# Needs: cargo, buildah (apt-get install buildah). Run as root (or set up rootless buildah).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The name the deploy manifests use (deploy/kustomize/base/statefulset.yaml, the Helm chart).
IMAGE="${IMAGE:-ghcr.io/ha-metrics-server/ha-metrics-server:v0.1.0}"
OUT="${OUT:-target/image/ha-metrics-server.oci.tar}"
TARGET=x86_64-unknown-linux-gnu
PROFILE=image
BIN="target/$TARGET/$PROFILE/ha-metrics-server"
# buildah's storage: vfs works everywhere (no overlay mounts needed, e.g. inside a container).
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"

command -v buildah >/dev/null || { echo "buildah is required: apt-get install -y buildah" >&2; exit 1; }

echo "== static release binary ($PROFILE profile: release, stripped)"
# getrandom 0.3 finds glibc's getrandom() through a weak symbol, which a static binary lacks, and
# would fall back to /dev/urandom: use the system call directly.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
  cargo build --locked --profile "$PROFILE" --target "$TARGET" -p ha-metrics-server --bin ha-metrics-server
# A static binary has no program interpreter and needs no shared library.
if ldd "$BIN" 2>&1 | grep -q "=>"; then
  echo "$BIN is dynamically linked:" >&2; ldd "$BIN" >&2; exit 1
fi

echo "== image $IMAGE"
created="$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
ctr="$(buildah from scratch)"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --chown 0:0 --chmod 0555 "$ctr" "$BIN" /ha-metrics-server >/dev/null
buildah config \
  --user 65534:65534 \
  --entrypoint '["/ha-metrics-server"]' \
  --cmd '' \
  --port 10250/tcp --port 10251/tcp \
  --os linux --arch amd64 \
  --created-by "deploy/image/build.sh" \
  --annotation "org.opencontainers.image.title=ha-metrics-server" \
  --annotation "org.opencontainers.image.version=${IMAGE##*:}" \
  --annotation "org.opencontainers.image.revision=$revision" \
  --annotation "org.opencontainers.image.created=$created" \
  --annotation "org.opencontainers.image.licenses=Apache-2.0" \
  "$ctr"
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
buildah commit --quiet --format oci --disable-compression=false --timestamp "$(date -d "$created" +%s)" "$ctr" "oci-archive:$OUT:$IMAGE" >/dev/null
echo "== wrote $OUT ($(du -b "$OUT" | cut -f1) bytes; binary $(du -b "$BIN" | cut -f1) bytes)"
