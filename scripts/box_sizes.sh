#!/bin/sh
# betaplane-small in boxes of other sizes at the same grid spacing (L/n = 2π/64) and the same
# physical forcing ring (k_f = 8 ± 1.5 in units of 1, i.e. kf = 8 L/2π in units of 2π/L): a
# training run at L = 3π (96²) for the point-token emulator conditioned on L, and the test run
# at L = 4π (128²). Zonal-mean U(y, t) only. One process, one thread; a run whose run.json exists
# is skipped. Docs: docs/conditioned-slt.md, "The conditioned point-token emulator".
#   setsid nohup sh scripts/box_sizes.sh > data/box_sizes.log 2>&1 < /dev/null &
cd "$(dirname "$0")/.." || exit 1
export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1
H=.venv/bin/hybrid

# box OUT N L KF KF_WIDTH MEMBERS SEED: spin-up 750 (3 damping times), then 20,000 recorded
box() {
  if [ -f $1/run.json ]; then echo "skip  $1 (done)"; return 0; fi
  echo "start $1 $(date -u +%FT%TZ)"
  $H dns betaplane-small --record zonal-mean --set n=$2 --set L=$3 --set kf=$4 \
      --set kf_width=$5 --members $6 --spinup 750 --t-end 20000 --seed $7 --threads 1 \
      --overwrite --out $1 > $1.log 2>&1
  echo "end   $1 rc=$? $(date -u +%FT%TZ)"
}

mkdir -p data/betaplane-box data/betaplane-box2
box data/betaplane-box/train-L3pi 96 9.42477796076938 12 2.25 3 2401     # 15 min
box data/betaplane-box2/test 128 12.566370614359172 16 3 4 41            # 20 min
