#!/bin/sh
# Every sweep of experiments/bytes20, one after another (each resumes where it stopped), niced:
#   sh experiments/bytes20/run.sh > experiments/bytes20/sweep.log 2>&1 &
set -e
cd "$(dirname "$0")/../.."
for f in fedavg dml sampling rows fedavg-sampled; do
  echo "== $f $(date -u +%H:%M:%S)"
  nice -n 10 node dist/simulations/cli.js sweep "experiments/bytes20/$f.yaml"
done
echo "== done $(date -u +%H:%M:%S)"
