"""``hybrid generate PRESET``: its arguments and its handler (exit codes, messages)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generation import execute
from .plan import make_plan
from .schema import TARGETS

__all__ = ["configure", "handler"]


def _split_arg(text: str) -> tuple[float, float, float]:
    """'0.7,0.15,0.15' → (0.7, 0.15, 0.15), checked by
    :func:`closures.dataset_file.check_split`."""
    from closures.dataset_file import check_split
    try:
        return check_split(tuple(float(x) for x in text.split(",")))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``hybrid generate``."""
    from ..cli.arguments import grid_size, nonnegative_float, nonnegative_int, positive_float, positive_int
    from ..config import list_presets
    p.add_argument("preset", help=f"preset name ({', '.join(list_presets())}) or path of a TOML "
                                  f"file")
    p.add_argument("--samples", type=positive_int, required=True,
                   help="samples wanted (rounded up to a multiple of --members)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="the netCDF file to write (its restart goes to FILE.restart.nc)")
    p.add_argument("--members", type=positive_int, default=None,
                   help="DNS ensemble members run together (default 1)")
    p.add_argument("--interval", type=positive_float, default=None, metavar="DT",
                   help="time between sampling times (default: the preset's output_every)")
    p.add_argument("--spinup", type=nonnegative_float, default=None, metavar="T",
                   help="time discarded before the first sample (default: the preset's)")
    p.add_argument("--seed", type=nonnegative_int, default=None, help="random seed (default 0)")
    p.add_argument("--n-dns", type=grid_size, default=None, help="DNS grid points per side "
                                                                  "(default: the preset's)")
    p.add_argument("--n-les", type=grid_size, default=None, help="LES grid points per side; must "
                                                                  "divide the DNS n (default: "
                                                                  "the preset's)")
    p.add_argument("--dt-dns", type=positive_float, default=None, metavar="DT",
                   help="DNS time step (default: the preset's; a coarser --n-dns allows a "
                        "longer one)")
    p.add_argument("--delta", type=nonnegative_float, default=None,
                   help="Gaussian filter width (default: the preset's LES forcing filter, 2 LES "
                        "grid spacings; target subgrid); the LES is forced with the same filter")
    p.add_argument("--target", choices=TARGETS, default=None,
                   help="subgrid (default): w_bar and Pi, closure C = -Pi; missing-physics: "
                        "subsampled vorticity and H = -u.grad w, closure C = +H (ns-unitbox)")
    p.add_argument("--split", type=_split_arg, default=None, metavar="TRAIN,VAL,TEST",
                   help="fractions of the sampling times in the training, validation and test "
                        "blocks, in time order (default 0.7,0.15,0.15; 0,0,1: all test)")
    p.add_argument("--consecutive", type=positive_int, default=None, metavar="K",
                   help="K consecutive samples per member and sampling time, one LES refresh "
                        "interval apart (histories for the SLT closure; default 1)")
    p.add_argument("--refresh-every", type=positive_int, default=None, metavar="STEPS",
                   help="with --consecutive: LES steps between consecutive samples, the "
                        "closure's refresh period (default 5)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted FILE (or extend it to more --samples); settings "
                        "left out are taken from FILE, given ones must match it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")


def handler(args: argparse.Namespace) -> int:
    """``hybrid generate``: exit 0 done, 1 a write failed mid-run, 2 bad input (nothing written),
    3 the DNS blew up, 130 interrupted (1 and 130 keep the complete samples: --resume goes on)."""
    from solvers import BlowUpError

    from ..cli.arguments import EXIT_BLOWUP, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

    try:
        plan = make_plan(args.preset, args.out, args.samples, args.members, args.interval,
                     args.spinup, args.seed, args.n_dns, args.n_les, args.delta, args.target,
                     args.resume, args.overwrite, args.dt_dns, args.split, args.consecutive,
                     args.refresh_every)
    except (ValueError, OSError) as e:
        print(f"hybrid: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for note in plan.notes:
        print(f"hybrid generate: {note}", file=sys.stderr)
    s = plan.solver
    runs = (f" ({plan.consecutive} consecutive, {plan.refresh_interval:g} apart)"
            if plan.consecutive > 1 else "")
    print(f"hybrid generate: {plan.preset.name} DNS {plan.n_dns}² → LES {plan.n_les}², "
          f"{plan.members} member(s), target {plan.target}, every {plan.interval:g}{runs} after "
          f"a spin-up of {plan.spinup:g}, dt={s.dt:g} → {plan.out}"
          + (f" (resuming after {plan.start} sampling time(s))" if plan.resume else ""),
          file=sys.stderr)
    try:
        execute(plan, progress=True)
    except BlowUpError as e:
        print(f"hybrid generate: {e}", file=sys.stderr)
        return EXIT_BLOWUP
    except OSError as e:
        print(f"hybrid generate: cannot write {plan.out} or its restart: {e}; the complete "
              f"samples are kept: continue with --resume once fixed", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hybrid generate: interrupted; {plan.out} keeps its complete samples: continue "
              f"with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"hybrid generate: {plan.samples} samples in {plan.out} (restart kept in "
          f"{plan.restart.name} for --resume)", file=sys.stderr)
    return EXIT_OK
