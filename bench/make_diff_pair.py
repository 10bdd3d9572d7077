#!/usr/bin/env python3
"""Create a large model and edited copies of it, for benchmarking `assay diff` and
`assay convert`.

    /work/fixenv/bin/python bench/make_diff_pair.py OUTDIR [--gb 1.0]

Writes into OUTDIR (outside the repository; nothing here is committed), float32,
Llama-like shapes (hidden 2048, MLP 5504, vocabulary 32000), as many blocks as fit in
--gb:
    base.safetensors       seeded normal(0, 0.02) weights
    lora.safetensors       rank-8 LoRA merged into q and v of every block
    finetune.safetensors   every tensor changed (base + full-rank noise of 1e-3)
    rome.safetensors       one rank-1 edit of one MLP down-projection
    base.pt                the base as a torch.save zip checkpoint (for convert)
Output is deterministic. Then: bench/diff_bench.sh OUTDIR
"""

import argparse
import os

import torch
from safetensors.torch import save_file

H, MLP, VOCAB = 2048, 5504, 32000


def block(i, g):
    p = f"model.layers.{i}."
    shapes = {
        "self_attn.q_proj.weight": (H, H),
        "self_attn.k_proj.weight": (H, H),
        "self_attn.v_proj.weight": (H, H),
        "self_attn.o_proj.weight": (H, H),
        "mlp.gate_proj.weight": (MLP, H),
        "mlp.up_proj.weight": (MLP, H),
        "mlp.down_proj.weight": (H, MLP),
    }
    out = {p + k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()}
    out[p + "input_layernorm.weight"] = torch.ones(H)
    out[p + "post_attention_layernorm.weight"] = torch.ones(H)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--gb", type=float, default=1.0)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    per_block = (4 * H * H + 3 * MLP * H + 2 * H) * 4
    fixed = 2 * VOCAB * H * 4
    blocks = max(1, int((a.gb * (1 << 30) - fixed) // per_block))
    sd = {"model.embed_tokens.weight": torch.randn(VOCAB, H, generator=g) * 0.02}
    for i in range(blocks):
        sd.update(block(i, g))
    sd["model.norm.weight"] = torch.ones(H)
    sd["lm_head.weight"] = torch.randn(VOCAB, H, generator=g) * 0.02
    total = sum(t.numel() * 4 for t in sd.values())
    print(f"{blocks} blocks, {len(sd)} tensors, {total / 1e9:.2f} GB")
    save_file(sd, os.path.join(a.outdir, "base.safetensors"))
    torch.save(sd, os.path.join(a.outdir, "base.pt"))

    lora = dict(sd)
    for i in range(blocks):
        for m in ("q_proj", "v_proj"):
            k = f"model.layers.{i}.self_attn.{m}.weight"
            B = torch.randn(H, 8, generator=g) * 0.01
            A = torch.randn(8, H, generator=g) * 0.01
            lora[k] = sd[k] + 2.0 * (B @ A)
    save_file(lora, os.path.join(a.outdir, "lora.safetensors"))
    del lora

    rome = dict(sd)
    k = f"model.layers.{blocks // 2}.mlp.down_proj.weight"
    rome[k] = sd[k] + torch.outer(torch.randn(H, generator=g), torch.randn(MLP, generator=g)) * 1e-3
    save_file(rome, os.path.join(a.outdir, "rome.safetensors"))
    del rome

    ft = {k: v + torch.randn(v.shape, generator=g) * 1e-3 for k, v in sd.items()}
    save_file(ft, os.path.join(a.outdir, "finetune.safetensors"))


if __name__ == "__main__":
    main()
