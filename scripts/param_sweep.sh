#!/bin/sh
# betaplane-small DNS across parameters (beta, mu) for the conditioned SLT: zonal-mean U(y, t) only.
# Plan, splits, seeds and expected jet numbers: docs/conditioned-slt.md, "Data across parameters".
# One process at a time, one thread. Resumes: a run whose run.json exists is skipped; an
# unfinished one is started again from rest (--overwrite). Run from anywhere:
#   mkdir -p data/betaplane-sweep
#   setsid nohup sh scripts/param_sweep.sh > data/betaplane-sweep/sweep.log 2>&1 < /dev/null &
# An optional argument, a shell pattern of SPLIT/NAME (e.g. 'train/*-mu2e-3'), runs the matching
# runs only: processes with disjoint patterns, each with its own log, make the sweep on several
# cores, e.g. 'train/*-mu[48]e-3', 'train/*-mu2e-3' and 'val/*|test-*'.
cd "$(dirname "$0")/.." || exit 1
export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1
H=.venv/bin/hybrid
ROOT=data/betaplane-sweep
mkdir -p $ROOT/logs
failed=0
PART=${1:-*}

# run SPLIT BETA MU MEMBERS T_END SEED: spin-up 3/mu (3 damping times), then T_END recorded, U(y)
# every 10 time units (the preset's), every other setting the preset's.
run() {
  split=$1 beta=$2 mu=$3 members=$4 tend=$5 seed=$6
  eval "case $split/beta$beta-mu$mu in $PART) ;; *) return 0 ;; esac"
  name=beta$beta-mu$mu
  out=$ROOT/$split/$name
  if [ -f $out/run.json ]; then echo "skip  $split/$name (done)"; return 0; fi
  spinup=$(awk -v m="$mu" 'BEGIN { printf "%g", 3 / m }')
  echo "start $split/$name members=$members t_end=$tend spinup=$spinup seed=$seed $(date -u +%FT%TZ)"
  $H dns betaplane-small --record zonal-mean --set beta=$beta --set mu=$mu --spinup $spinup \
      --members $members --t-end $tend --seed $seed --threads 1 --overwrite --out $out \
      > $ROOT/logs/$split-$name.log 2>&1
  rc=$?
  echo "end   $split/$name rc=$rc $(date -u +%FT%TZ)"
  [ $rc -eq 0 ] || failed=$((failed + 1))
}

# Stage 1, one parameter: beta at the preset's mu = 4e-3.
seed=2001
for beta in 2 4 8 16 32; do run train $beta 4e-3 3 20000 $seed; seed=$((seed + 1)); done
seed=2101
for beta in 2 4 8 16 32; do run val $beta 4e-3 1 10000 $seed; seed=$((seed + 1)); done
run test-interp 2.83 4e-3 2 20000 2201
run test-interp 5.66 4e-3 2 20000 2202
run test-interp 11.3 4e-3 2 20000 2203
run test-interp 22.6 4e-3 2 20000 2204
run test-extrap 1  4e-3 2 20000 2301
run test-extrap 64 4e-3 2 20000 2302

# Stage 2, the second parameter: the same betas at mu = 8e-3 and 2e-3 (training seeds 2006-2015,
# validation seeds 2106-2115, in that order).
seed=2006
for mu in 8e-3 2e-3; do
  for beta in 2 4 8 16 32; do run train $beta $mu 3 20000 $seed; seed=$((seed + 1)); done
done
seed=2106
for mu in 8e-3 2e-3; do
  for beta in 2 4 8 16 32; do run val $beta $mu 1 10000 $seed; seed=$((seed + 1)); done
done
run test-interp 2.83 5.66e-3 2 20000 2205
run test-interp 5.66 2.83e-3 2 20000 2206
run test-interp 11.3 5.66e-3 2 20000 2207
run test-interp 22.6 2.83e-3 2 20000 2208
run test-extrap 8 1.6e-2 2 20000 2303

# Stage 3, the pre-training point (beta = 8, mu = 4e-3) held out for the forgetting test of
# fine-tuning (docs/conditioned-slt.md, "Pre-training at one point, then fine-tuning").
run test-pretrain 8 4e-3 2 20000 2501
# ... and a longer sample of it (8 members) that can resolve a 10 % change of a distance
run test-pretrain-long 8 4e-3 8 20000 2502

echo "finished $(date -u +%FT%TZ), failed runs: $failed"
[ $failed -eq 0 ]
