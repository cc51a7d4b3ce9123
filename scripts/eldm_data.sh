#!/bin/sh
# DNS ensembles from common states for the ensemble generator: training starts from the seed-14
# run, validation starts from the seed-15 run (test starts: the seed-13 short-range ensembles).
set -e
H=.venv/bin/hybrid
i=0
for t in $(seq 1000 720 29300); do
  out=data/betaplane-small/eldm/train/start-$t
  [ -f $out/run.json ] || $H dns betaplane-small --record zonal-mean --init data/betaplane-small/starts-train/trajectory.nc \
      --at $t --members 9 --seed $((500 + i)) --t-end 500 --threads 1 --overwrite --out $out > /dev/null 2>&1
  i=$((i + 1))
done
j=0
for t in $(seq 1360 720 29300); do          # a second set of training starts, between the first
  out=data/betaplane-small/eldm/train/start-$t
  [ -f $out/run.json ] || $H dns betaplane-small --record zonal-mean --init data/betaplane-small/starts-train/trajectory.nc \
      --at $t --members 9 --seed $((700 + j)) --t-end 500 --threads 1 --overwrite --out $out > /dev/null 2>&1
  j=$((j + 1))
done
for t in $(seq 1000 1000 9000); do
  out=data/betaplane-small/eldm/val/start-$t
  [ -f $out/run.json ] || $H dns betaplane-small --record zonal-mean --init data/betaplane-small/starts-val/trajectory.nc \
      --at $t --members 9 --seed $((600 + i)) --t-end 500 --threads 1 --overwrite --out $out > /dev/null 2>&1
  i=$((i + 1))
done
echo done
