#!/bin/sh
# The ns-unitbox closure models of docs/ldm-unitbox.md, one after the other on one thread:
# the paper's recipe (no mean network; latent 1 x 16^2, FNO 4 modes width 20; P-CDM FNO 6 modes
# width 40; loss 10 MSE_H + 0.1 MSE_w + 0.1 DSM + 0.01 moment; Adam 1e-3) scaled to about half an
# hour to an hour of one core each: batch 32, lr halved every third of the epochs.
# Usage: sh scripts/unitbox_train.sh [joint|two-phase|mean|pcdm ...]   (default: all four)
# A model whose card (STEM.json) exists is skipped; an interrupted one continues (--resume).
cd "$(dirname "$0")/.." || exit 1
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
DATA=data/ns-unitbox/train.nc
OUT=runs/unitbox
mkdir -p $OUT
failed=0

train() {
  stem=$OUT/$1; shift
  if [ -f $stem.json ]; then echo "skip  $stem (done)"; return 0; fi
  resume=""; [ -f $stem.ckpt.pt ] && resume="--resume"
  echo "start $stem $(date -u +%FT%TZ)"
  .venv/bin/hybrid train ldm --data $DATA --out $stem --batch 32 --lr 1e-3 --threads 1 \
      --seed 0 --no-progress $resume "$@" > $stem.out 2>&1
  rc=$?
  echo "end   $stem rc=$rc $(date -u +%FT%TZ)"
  [ $rc -eq 0 ] || failed=$((failed + 1))
}

for model in ${@:-joint two-phase mean pcdm}; do
  case $model in
    joint)     train ldm-joint --epochs 30 --lr-halving-every 10 ;;
    two-phase) train ldm-two-phase --mode two-phase --epochs 30 --ae-epochs 15 --lr-halving-every 10 ;;
    mean)      train ldm-mean --epochs 30 --lr-halving-every 10 --mean-width 16 ;;
    pcdm)      train pcdm --space physical --modes 6 --width 40 --epochs 10 --lr-halving-every 4 ;;
    *)         echo "unknown model $model (joint, two-phase, mean, pcdm)"; exit 2 ;;
  esac
done
echo "failed: $failed"
[ $failed -eq 0 ]
