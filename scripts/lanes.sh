#!/usr/bin/env bash
# The implementation lanes of CI (.ci/run; docs/IMPLEMENTATIONS.md, docs/TESTING.md): the kernel,
# autograd and planner suites again on another WebGPU implementation or under other limits, under
# both kernel families (the adapter's own, then the GPU family forced). Each pass prints its time.
#
#   bash scripts/lanes.sh default-limits   # lavapipe opened with WebGPU's default limits (WEBGPU_MOE_LIMITS=default)
#   bash scripts/lanes.sh swiftshader      # SwiftShader (Chromium's CPU Vulkan): subgroups of 4, no shader-f16
#   bash scripts/lanes.sh mesa-26          # Mesa 26.1 lavapipe in the Debian 13 root (scripts/trixie-root.sh; root)
#
# SWIFTSHADER_ICD overrides where SwiftShader's ICD file is (default: Debian's chromium package's).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# The planner files that open a device (planner.test.ts plans on the meta runtime with named
# targets only: the same on every adapter, so `npm test` runs it once).
SUITES=(test/kernels test/autograd test/planner/exact.test.ts test/planner/targets.test.ts)
lane="${1:-}"
prefix=()
extra=()
case "$lane" in
  default-limits)
    export WEBGPU_MOE_LIMITS=default
    ;;
  swiftshader)
    icd="${SWIFTSHADER_ICD:-/usr/lib/chromium/vk_swiftshader_icd.json}"
    if [ ! -f "$icd" ]; then
      echo "[lane swiftshader] $icd not found: SwiftShader ships in Debian's chromium package (scripts/setup.sh installs it), or set SWIFTSHADER_ICD" >&2
      exit 1
    fi
    export VK_ICD_FILENAMES="$icd"
    # SwiftShader compiles every pipeline afresh (no shader cache across runs) and runs ~4x slower
    # than lavapipe: a planner case that opens with a dozen compiles can exceed vitest's 120 s on a
    # loaded 2-core host, and a timed-out case keeps running into the next one.
    extra=(--testTimeout=600000 --hookTimeout=600000)
    ;;
  mesa-26)
    prefix=(bash scripts/trixie-root.sh run --)
    [ "$(id -u)" = 0 ] || prefix=(sudo "${prefix[@]}")
    ;;
  *)
    echo "usage: bash scripts/lanes.sh default-limits | swiftshader | mesa-26" >&2
    exit 2
    ;;
esac

total=$SECONDS
for family in auto gpu; do
  start=$SECONDS
  if [ "$family" = gpu ]; then export WEBGPU_MOE_KERNELS=gpu; else unset WEBGPU_MOE_KERNELS; fi
  "${prefix[@]}" node_modules/.bin/vitest run "${extra[@]}" "${SUITES[@]}"
  echo "[lane $lane] $family kernel family: $((SECONDS - start)) s"
done
echo "[lane $lane] both families: $((SECONDS - total)) s"
