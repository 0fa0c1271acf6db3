#!/usr/bin/env bash
# The prepared GPU check: one run on a lent GPU machine (no Node, no npm, no network there; the
# self-contained bundle travels: `npm run bundle` here, then carry dist/webgpu-moe-linux-x64).
#
#   bash bench/gpu/check.sh OUT_DIR [--quick]
#
# Writes OUT_DIR/gpu-check.{json,md}, machine.txt and parts.tar.gz (logs and raw JSON) within ~8 minutes:
#   1. the engine (bundle): caps, a checked matmul sweep, training steps, planned vs measured peak;
#   2. PyTorch on the same machine: torch.matmul on the same shapes, and the same model's training
#      step in eager mode (CUDA fp32 when there is a GPU, else CPU);
#   3. the merged report.
# --quick: small shapes, for a smoke test on lavapipe (test/bundle/bundle.test.ts runs it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: bench/gpu/check.sh OUT_DIR [--quick]}
QUICK=${2:-}
BUNDLE=${WEBGPU_MOE_BUNDLE:-$ROOT/dist/webgpu-moe-linux-x64}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ ! -x "$BUNDLE/run.sh" ]; then
  echo "check.sh: no bundle at $BUNDLE: run 'npm run bundle' and carry dist/webgpu-moe-linux-x64" >&2
  exit 2
fi
# The python3 with torch: the GPU machine's plain python3, Debian's /usr/bin/python3 here.
PY=python3
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
done
DEV=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo none)
export PYTHONUNBUFFERED=1
# Experimental Dawn features (the subgroup-matrix tensor-core path) need the unsafe-API toggle.
export WEBGPU_MOE_DAWN_FLAGS=${WEBGPU_MOE_DAWN_FLAGS:-enable-dawn-features=allow_unsafe_apis}
start=$SECONDS
{
  echo "date: $(date -u +%FT%TZ)"
  echo "torch device: $DEV ($PY)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

echo "== 1. engine (bundle)"
timeout 330 "$BUNDLE/run.sh" gpu-check --out "$OUT" $QUICK 2>&1 | tee "$OUT/engine.log"
echo "engine: $((SECONDS - start)) s"

if [ "$DEV" != none ]; then
  echo "== 2. PyTorch peers on $DEV"
  if [ -f "$OUT/shapes.json" ]; then
    timeout 100 "$PY" "$ROOT/bench/peers/torch_matmul.py" --device "$DEV" --shapes "$(cat "$OUT/shapes.json")" $([ -n "$QUICK" ] && echo --samples 2 --target-ms 10) > "$OUT/torch-matmul.json" 2> "$OUT/torch-matmul.log" || echo "torch matmul peer failed (see torch-matmul.log)"
  fi
  if [ -f "$OUT/train-cases.json" ]; then
    # One PyTorch run per (model, batch, context): the f16 row is compared with PyTorch fp32.
    timeout 150 "$PY" - "$OUT" "$DEV" "$ROOT" "$QUICK" <<'PYEOF' || echo "torch train peer failed"
import json, subprocess, sys
out, dev, root, quick = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
cases = json.load(open(f"{out}/train-cases.json"))
done = {}
for c in cases:
    key = (c["config"], c["B"], c["T"])
    if key not in done:
        steps = ["--warmup", "1", "--steps", "2"] if quick else ["--warmup", "3", "--steps", "8"]
        r = subprocess.run([sys.executable, f"{root}/bench/peers/torch_train.py", "--config", c["config"], "--batch", str(c["B"]), "--context", str(c["T"]), "--device", dev, "--threads", "16" if dev == "cpu" else "1", *steps], capture_output=True, text=True, timeout=120)
        done[key] = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
        if done[key] is None:
            print(f"torch train {c['name']}: {r.stderr[-800:]}", file=sys.stderr)
    if done[key]:
        open(f"{out}/torch-train-{c['i']}.json", "w").write(done[key] + "\n")
        print(f"torch train {c['name']}: {json.loads(done[key])['ms_median']:.2f} ms/step")
PYEOF
  fi
  echo "peers: $((SECONDS - start)) s"
fi

echo "== 3. report"
"$BUNDLE/run.sh" gpu-check --out "$OUT" --report
# The device tool brings back at most 8 files: the report, the machine, and the parts in one archive.
(cd "$OUT" && parts=$(ls | grep -v -x -e gpu-check.json -e gpu-check.md -e machine.txt -e parts.tar.gz) && [ -n "$parts" ] && tar -czf parts.tar.gz $parts && rm -f $parts)
echo "check.sh: $((SECONDS - start)) s in all; $OUT/gpu-check.md"
