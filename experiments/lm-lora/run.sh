#!/usr/bin/env bash
# LoRA students across sites, seeds 1-3: per seed, DML with LoRA students and the local-only LoRA
# baseline (the run trains the frozen base and saves it in seedN-dml/base/), then FedAvg of the
# adapters on that same base. Then summary.md (mean ± SD over seeds). From the repository root:
#   npm run build && bash experiments/lm-lora/run.sh
# ≈ 11-13 min on the shared 2-core machine (load average ≈ 13-15). Each run's log is in its folder.
set -euo pipefail
here=experiments/lm-lora
for seed in 1 2 3; do
  mkdir -p "$here/seed$seed-dml" "$here/seed$seed-fedavg"
  nice -n 10 node dist/simulations/cli.js simulate --config "$here/dml.yaml" --seed "$seed" --out "$here/seed$seed-dml" --no-save \
    2>&1 | tee "$here/seed$seed-dml/log.txt"
  sed -e "s#seed1-dml/base#seed$seed-dml/base#" "$here/fedavg.yaml" > "$here/seed$seed-fedavg/fedavg.yaml"
  nice -n 10 node dist/simulations/cli.js simulate --config "$here/seed$seed-fedavg/fedavg.yaml" --seed "$seed" --out "$here/seed$seed-fedavg" --no-save \
    2>&1 | tee "$here/seed$seed-fedavg/log.txt"
done
node "$here/summarize.mjs" "$here" | tee "$here/summary.md"
