#!/usr/bin/env bash
# Idempotent machine setup: node modules, and a Vulkan driver (Mesa lavapipe) when
# no WebGPU adapter can be found. A no-op on a machine that already has both.
# Why lavapipe from bookworm-backports: Debian bookworm's Mesa 22.3 lacks Vulkan
# features Dawn requires; Mesa 25 from backports works (see docs/DESIGN.md §3).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

have_adapter() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

if have_adapter; then
  echo "[setup] WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] no WebGPU adapter and no apt-get: install a Vulkan driver (a GPU driver, or Mesa >= 24 lavapipe) by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"
if [ "$codename" = "bookworm" ]; then
  src=/etc/apt/sources.list.d/bookworm-backports.sources
  if [ ! -f "$src" ]; then
    echo "[setup] adding bookworm-backports apt source"
    $SUDO tee "$src" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  echo "[setup] installing Mesa lavapipe (CPU Vulkan) from bookworm-backports"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  echo "[setup] installing Mesa Vulkan drivers"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if have_adapter; then
  echo "[setup] WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
else
  echo "[setup] still no WebGPU adapter after installing lavapipe:" >&2
  node scripts/probe-adapter.mjs >&2 || true
  exit 1
fi
