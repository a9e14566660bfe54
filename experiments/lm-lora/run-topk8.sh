#!/usr/bin/env bash
# DML with LoRA students and top-8 sparse per-token knowledge, seeds 1-3, on the bases run.sh
# saved (run it first). Then summary.md again, with the top-k rows. From the repository root:
#   npm run build && bash experiments/lm-lora/run-topk8.sh
set -euo pipefail
here=experiments/lm-lora
for seed in 1 2 3; do
  mkdir -p "$here/seed$seed-dml-topk8"
  sed -e "s#seed1-dml/base#seed$seed-dml/base#" "$here/dml-topk8.yaml" > "$here/seed$seed-dml-topk8/dml-topk8.yaml"
  nice -n 10 node dist/simulations/cli.js simulate --config "$here/seed$seed-dml-topk8/dml-topk8.yaml" --seed "$seed" --out "$here/seed$seed-dml-topk8" --no-save \
    2>&1 | tee "$here/seed$seed-dml-topk8/log.txt"
done
node "$here/summarize.mjs" "$here" | tee "$here/summary.md"
