#!/bin/sh
# webgpu-moe, self-contained (scripts/bundle/bundle.mjs made this folder). Needs a GPU driver (or
# Mesa lavapipe) and nothing else: no Node, no npm, no network.
#   ./run.sh train --config small-moe.json [flags]   the train.js CLI
#   ./run.sh bench [suite ...] [--quick]             the benchmark suites
#   ./run.sh gpu-check --out DIR [--quick]           the node side of bench/gpu/check.sh
#   ./run.sh node ARGS                               the bundled Node itself
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

# Compressed files are unpacked once, beside themselves.
unpack() {
  if [ ! -s "$1" ]; then
    gzip -dc "$1.gz" > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"
  fi
}
unpack "$HERE/bin/node"
chmod +x "$HERE/bin/node"
unpack "$HERE/lib/node_modules/webgpu/dist/linux-x64/dawn.node"

# The Vulkan loader: the system's when it has one, else the bundled .deb unpacked here.
if ! (ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'); then
  VK="$HERE/vulkan"
  if [ ! -e "$VK/usr/lib/x86_64-linux-gnu/libvulkan.so.1" ]; then
    for deb in "$HERE"/deb/*.deb; do
      [ -e "$deb" ] || { echo "run.sh: no Vulkan loader on this machine and none bundled (install libvulkan1)" >&2; exit 2; }
      mkdir -p "$VK"
      if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$deb" "$VK"
      else (cd "$VK" && ar p "$deb" data.tar.xz | tar -xJ) fi
    done
  fi
  LD_LIBRARY_PATH="$VK/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi
# CUDA images mount NVIDIA's Vulkan ICD outside the loader's search path.
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] \
  && ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export VK_DRIVER_FILES
fi
XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
export XDG_RUNTIME_DIR

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  train) exec "$HERE/bin/node" "$HERE/lib/train.mjs" "$@" ;;
  bench) exec "$HERE/bin/node" "$HERE/lib/bench.mjs" "$@" ;;
  gpu-check) exec "$HERE/bin/node" "$HERE/lib/gpu-check.mjs" "$@" ;;
  node) exec "$HERE/bin/node" "$@" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
