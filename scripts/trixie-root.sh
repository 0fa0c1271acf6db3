#!/usr/bin/env bash
# A Debian 13 (trixie) root with the newest Mesa lavapipe (trixie-backports) and Node.js, for the
# "newest Mesa" test and benchmark lane (docs/IMPLEMENTATIONS.md). Bookworm cannot run that Mesa
# (it needs glibc >= 2.39), so the lane runs this checkout inside the root, bind-mounted at the
# same path, with the same node_modules.
#
#   bash scripts/trixie-root.sh                 # make (or update) the root, print its Mesa and Node
#   bash scripts/trixie-root.sh run -- CMD ...  # run CMD in this checkout inside the root
#
# The root lives in $WEBGPU_MOE_TRIXIE (default /var/tmp/webgpu-moe-trixie). Needs root (chroot,
# mount) and the Debian mirror. On a machine that is Debian 13 itself, scripts/setup.sh installs
# the backports Mesa directly and this script is not needed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
ROOT="${WEBGPU_MOE_TRIXIE:-/var/tmp/webgpu-moe-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "$(id -u)" != 0 ]; then
  echo "trixie-root.sh: needs root (debootstrap, chroot and bind mounts); run it with sudo" >&2
  exit 2
fi

make_root() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "[trixie] installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    echo "[trixie] debootstrap trixie into $ROOT (a few minutes)"
    mkdir -p "$ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >/dev/null
  fi
  cat >"$ROOT/etc/apt/sources.list.d/backports.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  echo "[trixie] installing Mesa lavapipe from trixie-backports, and Node.js"
  chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends -t trixie-backports mesa-vulkan-drivers libvulkan1 >/dev/null && apt-get install -y -qq --no-install-recommends nodejs ca-certificates >/dev/null'
}

mounted() { mountpoint -q "$1"; }

run_in_root() {
  for d in proc sys dev tmp; do
    mkdir -p "$ROOT/$d"
    mounted "$ROOT/$d" || mount --bind "/$d" "$ROOT/$d"
  done
  mkdir -p "$ROOT$REPO"
  mounted "$ROOT$REPO" || mount --bind "$REPO" "$ROOT$REPO"
  # debootstrap writes no /etc/hosts: vitest and the dashboard's server resolve localhost.
  grep -qs '\blocalhost\b' "$ROOT/etc/hosts" || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >>"$ROOT/etc/hosts"
  # node_modules may be a link to another checkout's: bind that one too, at its own path.
  if [ -L "$REPO/node_modules" ]; then
    nm="$(readlink -f "$REPO/node_modules")"
    mkdir -p "$ROOT$nm"
    mounted "$ROOT$nm" || mount --bind "$nm" "$ROOT$nm"
  fi
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root XDG_RUNTIME_DIR=/tmp \
    ${WEBGPU_MOE_KERNELS:+WEBGPU_MOE_KERNELS=$WEBGPU_MOE_KERNELS} ${WEBGPU_MOE_LIMITS:+WEBGPU_MOE_LIMITS=$WEBGPU_MOE_LIMITS} sh -c 'cd "$0" && exec "$@"' "$REPO" "$@"
}

case "${1:-make}" in
  make)
    make_root
    echo "[trixie] $(chroot "$ROOT" dpkg-query -W -f '${Package} ${Version}\n' mesa-vulkan-drivers nodejs | tr '\n' ';')"
    ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ -x "$ROOT/usr/bin/node" ] || make_root
    run_in_root "$@"
    ;;
  *)
    echo "usage: bash scripts/trixie-root.sh [make | run -- CMD ...]" >&2
    exit 2
    ;;
esac
