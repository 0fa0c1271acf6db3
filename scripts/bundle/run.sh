#!/bin/sh
# webgpu-moe, self-contained (scripts/bundle/bundle.mjs made this folder). Needs a GPU driver (or
# Mesa lavapipe) and nothing else: no Node, no npm, no network.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'EOF'
webgpu-moe, self-contained: needs a GPU driver (or Mesa lavapipe) and nothing else.
  ./run.sh train --config small-moe.json [flags]       train.js: train (--plan, --ui [port], --resume, ...)
  ./run.sh forecast --checkpoint runs/small-moe [...]  forecast.js: forecast or --evaluate a checkpoint
  ./run.sh export --checkpoint runs/small-moe --out D  export.js: a Hugging Face Time-MoE folder
  ./run.sh dashboard runs/small-moe [--port 8080]      dashboard.js: the runs in the browser
  ./run.sh diagnose runs/small-moe [--json]            diagnose.js: what went wrong in a run
  ./run.sh bench [suite ...] [--quick]                 the benchmark suites
  ./run.sh gpu-check --out DIR [--quick]               the node side of bench/gpu/check.sh
  ./run.sh node ARGS                                   the bundled Node itself
Each command's --help lists its flags. The first run unpacks bin/node and Dawn's dawn.node beside
their .gz files (about 115 MiB, once); caches go to ~/.cache (docs/BENCHMARKS.md "The bundle").
EOF
}

# Compressed files are unpacked once, beside themselves, saying so (the folder grows by their size).
unpack() {
  if [ ! -s "$1" ]; then
    size=$(gzip -l "$1.gz" | sed -n '2s/^ *[0-9]* *\([0-9]*\).*/\1/p')
    echo "run.sh: first run: unpacking ${1#"$HERE"/} ($((size / 1048576)) MiB) beside its .gz, once" >&2
    gzip -dc "$1.gz" > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  help | -h | --help) usage; exit 0 ;;
  train | forecast | export | dashboard | diagnose | bench | gpu-check | node) ;;
  '') usage >&2; exit 2 ;;
  *) echo "run.sh: unknown command \"$cmd\"" >&2; usage >&2; exit 2 ;;
esac

unpack "$HERE/bin/node"
chmod +x "$HERE/bin/node"
unpack "$HERE/lib/node_modules/webgpu/dist/linux-x64/dawn.node"

# The Vulkan loader: the system's when it has one, else the bundled .deb unpacked here.
if ! (ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'); then
  VK="$HERE/vulkan"
  if [ ! -e "$VK/usr/lib/x86_64-linux-gnu/libvulkan.so.1" ]; then
    for deb in "$HERE"/deb/*.deb; do
      [ -e "$deb" ] || { echo "run.sh: no Vulkan loader on this machine and none bundled (install libvulkan1)" >&2; exit 2; }
      echo "run.sh: first run: no Vulkan loader on this machine: unpacking the bundled one into vulkan/, once" >&2
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

case "$cmd" in
  node) exec "$HERE/bin/node" "$@" ;;
  *) exec "$HERE/bin/node" "$HERE/lib/$cmd.mjs" "$@" ;;
esac
