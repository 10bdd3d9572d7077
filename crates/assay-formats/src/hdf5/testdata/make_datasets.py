#!/usr/bin/env python3
"""HDF5 files with datasets for the dataset walker (hdf5/datasets.rs), written by h5py.

Run from the repository root with a Python that has h5py and numpy:

    python crates/assay-formats/src/hdf5/testdata/make_datasets.py

For every file it writes FILE.json: each dataset h5py sees (path, shape, dtype string,
layout, file offset of contiguous data from h5py's own `id.get_offset()`, storage size,
and the SHA-256 of the little-endian element bytes), the truth the Rust test compares with.
"""

import hashlib
import json
import os

import h5py
import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets")
rng = np.random.default_rng(7)


def manifest(path):
    out = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        plist = obj.id.get_create_plist()
        layout = {0: "compact", 1: "contiguous", 2: "chunked"}.get(plist.get_layout(), "other")
        filtered = plist.get_nfilters() > 0
        arr = obj[()]
        le = np.asarray(arr).astype(np.asarray(arr).dtype.newbyteorder("<"))
        out.append(
            {
                "path": name,
                "shape": list(obj.shape),
                "dtype": obj.dtype.str,
                "layout": layout,
                "filtered": filtered,
                "offset": obj.id.get_offset(),
                "storage": obj.id.get_storage_size(),
                "sha256": hashlib.sha256(le.tobytes()).hexdigest(),
            }
        )

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    with open(path + ".json", "w") as j:
        json.dump(sorted(out, key=lambda d: d["path"]), j, indent=1)
        j.write("\n")


def common(f):
    g = f.create_group("layers/dense/vars")
    g.create_dataset("0", data=rng.standard_normal((8, 4)).astype("<f4"))
    g.create_dataset("1", data=rng.standard_normal(4).astype("<f4"))
    f.create_dataset("half", data=rng.standard_normal((3, 5)).astype("<f2"))
    f.create_dataset("big_endian_f64", data=rng.standard_normal(6).astype(">f8"))
    f.create_dataset("ints", data=np.arange(10, dtype="<i4"))
    f.create_dataset("scalar", data=np.float32(1.5))
    f.create_dataset("never_written", shape=(4,), dtype="<f4")
    f.create_dataset(
        "gzip", data=rng.standard_normal((64, 8)).astype("<f4"), chunks=(16, 8), compression="gzip"
    )
    f.create_dataset("chunked_plain", data=rng.standard_normal((32, 4)).astype("<f4"), chunks=(8, 4))
    # Compact layout: the data is inside the object header.
    space = h5py.h5s.create_simple((5,))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    d = h5py.h5d.create(f.id, b"compact", h5py.h5t.IEEE_F32LE, space, dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(5, dtype="<f4"))
    # A second hard link to the same dataset: one object, two names.
    f["alias_of_bias"] = f["layers/dense/vars/1"]
    f.create_dataset("strings", data=np.array([b"ab", b"cd"]))
    # A group linked into itself: a cycle the walker must not follow forever.
    f["layers/dense/up"] = f["layers"]


def main():
    os.makedirs(HERE, exist_ok=True)
    # Earliest file format: v0 superblock, v1 groups (symbol tables, local heaps, v1 B-trees).
    p = os.path.join(HERE, "v1_groups.h5")
    with h5py.File(p, "w") as f:
        common(f)
    manifest(p)
    # Latest: v3 superblock, v2 object headers, compact links; a group with many members
    # stores its links densely (fractal heap + v2 B-tree of names).
    p = os.path.join(HERE, "v2_groups.h5")
    with h5py.File(p, "w", libver="latest") as f:
        common(f)
        many = f.create_group("many")
        for i in range(40):
            many.create_dataset(f"w{i:02d}", data=np.full(3, i, dtype="<f4"))
    manifest(p)


if __name__ == "__main__":
    main()
