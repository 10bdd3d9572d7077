"""Writes the HDF5 files the hdf5.rs unit tests read (run from this folder with h5py)."""
import h5py, numpy as np

CFG = b'{"class_name": "Sequential", "config": {"name": "s"}}'

def common(f):
    f.attrs["model_config"] = CFG                     # h5py 3: variable-length ASCII
    f.attrs["note"] = "h\u00e9llo"                     # variable-length UTF-8
    f.attrs["count"] = np.int64(7)
    f.attrs.create("fixed", np.array(b"fixed-len", dtype="S16"))  # fixed-length, NUL padded
    f.attrs["list"] = [b"a", b"bc"]                    # 1-D vlen strings

with h5py.File("v0.h5", "w") as f:
    common(f)
    f.create_dataset("w", data=np.arange(4, dtype="f4"))

with h5py.File("v3.h5", "w", libver="latest") as f:
    common(f)

with h5py.File("userblock.h5", "w", userblock_size=512) as f:
    common(f)
with open("userblock.h5", "r+b") as fh:
    fh.write(b"#!/bin/sh\necho user block\n")

# Many attributes and large values: dense storage (fractal heap + v2 B-tree with
# internal nodes), huge heap objects for the large values.
with h5py.File("dense.h5", "w", libver="latest") as f:
    for i in range(60):
        f.attrs[f"a{i:03d}"] = f"value {i}".encode()
    f.attrs["model_config"] = CFG + b" " * 9000
    f.attrs.create("big_fixed", np.array(b"x" * 6000, dtype="S6000"))

# Old format with more attribute bytes than fit the first header chunk: continuation.
with h5py.File("continued.h5", "w") as f:
    for i in range(40):
        f.attrs[f"k{i:02d}"] = np.array(b"y" * 1000, dtype="S1000")
    f.attrs["model_config"] = CFG
