#!/usr/bin/env python3
"""Create large, benign model files for benchmarking Assay against other scanners.

    /work/fixenv/bin/python bench/make_big.py OUTDIR [--scale 1.0] [--skip-2g] [--views]

Writes into OUTDIR (which must be outside the repository; nothing here is committed):
    checkpoint_200m.pt   ~200 MB torch.save training checkpoint (model + Adam state + epoch)
    arrays_200m.pkl      ~200 MB pickle (protocol 4) of a dict of numpy arrays
    state_dict_2g.pt     ~2 GB torch.save state dict of many tensors (--skip-2g to omit)
With --views, also (small files whose cost is their pickle, not their weights):
    views_25k.pt         25,000 tensors that are views of one storage (2.5 MiB, data.pkl 2.2 MB)
    views_25k_legacy.pt  the same, saved with _use_new_zipfile_serialization=False

--scale multiplies every size (e.g. 0.1 for a quick run). Output is deterministic.
Then: bench/compare.sh OUTDIR
"""

import argparse
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
MB = 1 << 20


def tensors(total_bytes: int, per_tensor: int, seed: int) -> dict:
    """float32 tensors of ~per_tensor bytes each, normal(0, 0.02) like real weights."""
    g = torch.Generator().manual_seed(seed)
    out, left, i = {}, total_bytes, 0
    while left > 0:
        n = max(min(per_tensor, left) // 4, 1)  # at least one element, so the loop ends
        out[f"layers.{i // 4}.{('q', 'k', 'v', 'o')[i % 4]}_proj.weight"] = torch.randn(n, generator=g) * 0.02
        out[f"layers.{i // 4}.norm{i % 4}.bias"] = torch.zeros(64)  # many small tensors too
        left -= n * 4
        i += 1
    return out


def checkpoint(path: Path, size: int) -> None:
    sd = tensors(size // 3, 8 * MB, seed=1)
    exp_avg = {k: torch.zeros_like(v) for k, v in sd.items()}
    exp_avg_sq = {k: torch.zeros_like(v) for k, v in sd.items()}
    opt_state = {i: {"step": torch.tensor(100.0), "exp_avg": exp_avg[k], "exp_avg_sq": exp_avg_sq[k]}
                 for i, k in enumerate(sd)}
    ckpt = {
        "epoch": 7,
        "model_state_dict": sd,
        "optimizer_state_dict": {"state": opt_state,
                                 "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                                   "weight_decay": 0.0, "amsgrad": False,
                                                   "params": list(range(len(sd)))}]},
        "loss": 1.234,
    }
    torch.save(ckpt, path)


def arrays(path: Path, size: int) -> None:
    rng = np.random.default_rng(2)
    out, left, i = {}, size, 0
    while left > 0:
        n = max(min(4 * MB, left) // 4, 1)
        out[f"w{i}"] = rng.standard_normal(n, dtype=np.float32)
        out[f"meta{i}"] = {"shape": (n,), "name": f"w{i}"}
        left -= n * 4
        i += 1
    with open(path, "wb") as f:
        pickle.dump(out, f, protocol=4)


def views(path: Path, legacy: bool) -> None:
    """25,000 four-element views of one storage: a pickle of 25,000 rebuild calls."""
    base = torch.randn(100_000, generator=torch.Generator().manual_seed(4))
    sd = {f"layers.{i // 8}.p{i % 8}": base[4 * i: 4 * i + 4] for i in range(25_000)}
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--skip-2g", action="store_true")
    ap.add_argument("--views", action="store_true")
    a = ap.parse_args()
    out = a.outdir.resolve()
    if out == REPO or REPO in out.parents:
        sys.exit(f"refusing to write big files inside the repository ({REPO}); pick a path outside it")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [("checkpoint_200m.pt", checkpoint, 200), ("arrays_200m.pkl", arrays, 200)]
    if not a.skip_2g:
        jobs.append(("state_dict_2g.pt", lambda p, s: torch.save(tensors(s, 16 * MB, seed=3), p), 2048))
    for name, fn, mb in jobs:
        p = out / name
        fn(p, int(mb * MB * a.scale))
        print(f"{p}  {os.path.getsize(p) / MB:.0f} MiB", flush=True)
    if a.views:
        for name, legacy in [("views_25k.pt", False), ("views_25k_legacy.pt", True)]:
            views(out / name, legacy)
            print(f"{out / name}  {os.path.getsize(out / name) / MB:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
