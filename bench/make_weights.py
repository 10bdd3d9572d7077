#!/usr/bin/env python3
"""Large weight files for the tensor-stage benchmark (bench/tensor_bench.sh).

    /work/fixenv/bin/python bench/make_weights.py OUT_DIR [SIZE_MB]

Writes OUT_DIR/random_fp32.safetensors (Gaussian, std 0.02, in 64 tensors of equal
shape, like transformer blocks), OUT_DIR/random_bf16.safetensors and
OUT_DIR/random_fp32.pt (torch.save zip) of about SIZE_MB each (default 1024). Random
weights must give no high finding.
"""
import os
import sys

import torch
import safetensors.torch

out = sys.argv[1]
size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
n_tensors = 64
per = size_mb * (1 << 20) // 4 // n_tensors
side = int(per ** 0.5)
sd = {f"model.layers.{i}.mlp.weight": torch.randn(side, side) * 0.02 for i in range(n_tensors)}
safetensors.torch.save_file(sd, os.path.join(out, "random_fp32.safetensors"))
torch.save(sd, os.path.join(out, "random_fp32.pt"))
safetensors.torch.save_file({k: v.bfloat16() for k, v in sd.items()}, os.path.join(out, "random_bf16.safetensors"))
print(out)
