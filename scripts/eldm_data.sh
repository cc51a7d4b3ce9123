#!/bin/sh
# DNS ensembles from common states for the ensemble generator: training starts from the seed-14
# run, validation starts from the seed-15 run (test starts: the seed-13 short-range ensembles).
set -e
H=.venv/bin/hybrid

# start SPLIT SOURCE T SEED: one ensemble of 9 members from SOURCE's state at T, unless done
start() {
  out=data/betaplane-small/eldm/$1/start-$3
  [ -f $out/run.json ] || $H dns betaplane-small --record zonal-mean --init data/betaplane-small/$2/trajectory.nc \
      --at $3 --members 9 --seed $4 --t-end 500 --threads 1 --overwrite --out $out > /dev/null 2>&1
}

i=0
for t in $(seq 1000 720 29300); do
  start train starts-train $t $((500 + i))
  i=$((i + 1))
done
j=0
for t in $(seq 1360 720 29300); do          # a second set of training starts, between the first
  start train starts-train $t $((700 + j))
  j=$((j + 1))
done
for t in $(seq 1000 1000 9000); do
  start val starts-val $t $((600 + i))
  i=$((i + 1))
done
echo done
