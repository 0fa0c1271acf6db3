#!/usr/bin/env bash
# Idempotent machine setup: node modules, Chromium (the dashboard's browser test,
# test/ui/browser.ts) when none is found, and a Vulkan driver (Mesa lavapipe) when no WebGPU
# adapter can be found. A no-op on a machine that already has all three.
# Why lavapipe from backports: Debian bookworm's Mesa 22.3 lacks Vulkan features Dawn requires;
# Mesa 25 from bookworm-backports works, and Debian 13 gets trixie-backports' newest (docs/DESIGN.md §3).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian's chromium package, driven by playwright-core (Playwright's own browser download is not
# used). Training does not need it: a failed install is a warning, and the browser test then fails
# naming this script.
have_chromium() { [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ] || [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; }
if have_chromium; then
  echo "[setup] Chromium found: $( (command -v chromium || echo /usr/bin/chromium) 2>/dev/null)"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] warning: no Chromium and no apt-get: install Chromium by hand (or set CHROMIUM_PATH) for the dashboard's browser test" >&2
else
  echo "[setup] installing Chromium (apt package chromium) for the dashboard's browser test"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || ! have_chromium; then
    echo "[setup] warning: installing chromium failed; the dashboard's browser test needs it (or CHROMIUM_PATH)" >&2
  fi
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

. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"
# Debian 12 and 13: the newest Mesa is in the release's backports (bookworm's own 22.3 is too old for
# Dawn; trixie-backports' 26.1 has LLVM 19 and ran small-moe faster than 25.0, docs/IMPLEMENTATIONS.md).
# Elsewhere (Ubuntu, other Debian releases): the distribution's own Mesa.
case "$codename" in
  bookworm | trixie)
    src=/etc/apt/sources.list.d/$codename-backports.sources
    if ! grep -rqs "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "[setup] adding $codename-backports apt source"
      $SUDO tee "$src" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    echo "[setup] installing Mesa lavapipe (CPU Vulkan) from $codename-backports"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      -t "$codename-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
    ;;
  *)
    echo "[setup] installing Mesa Vulkan drivers"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
    ;;
esac

if have_adapter; then
  echo "[setup] WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
else
  echo "[setup] still no WebGPU adapter after installing lavapipe:" >&2
  node scripts/probe-adapter.mjs >&2 || true
  exit 1
fi
