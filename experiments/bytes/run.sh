#!/bin/sh
# Every sweep of experiments/bytes, one after another (each resumes where it stopped), niced:
#   sh experiments/bytes/run.sh > experiments/bytes/sweep.log 2>&1 &
set -e
cd "$(dirname "$0")/../.."
for f in combined combined-k2 combined-rows dtype topk target-topk rows rounds combined-k3 wide; do
  echo "== $f $(date -u +%H:%M:%S)"
  nice -n 10 node dist/simulations/cli.js sweep "experiments/bytes/$f.yaml"
done
echo "== done $(date -u +%H:%M:%S)"
