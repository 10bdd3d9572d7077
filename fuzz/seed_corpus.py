#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from ../fixtures: each file goes to the targets of its
kind (found by its bytes), and the members of containers and compressed files are
unpacked into theirs. Adds a few synthetic seeds the fixtures lack (every compressor,
PAX and GNU tar headers). Run from anywhere: python3 fuzz/seed_corpus.py"""
import bz2, gzip, hashlib, io, lzma, os, tarfile, zipfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
OUT = os.path.join(HERE, "corpus")
TARGETS = ["pickle", "zip", "tar", "npy", "sniff", "compress"]
TENSOR_TARGETS = ["tensor_safetensors", "tensor_torch_zip", "tensor_torch_legacy", "tensor_gguf",
                  "tensor_onnx", "tensor_numpy", "tensor_pickled_numpy", "tensor_analysis"]
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."


def put(target, data, max_len=1 << 18):
    if data and len(data) <= max_len:
        d = os.path.join(OUT, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)


def kind(d):
    for magic, k in [(b"PK", "zip"), (b"\x1f\x8b", "gzip"), (b"BZh", "bz2"),
                     (b"\xfd7zXZ", "xz"), (b"\x04\x22\x4d\x18", "lz4"),
                     (b"\x5d\x00\x00", "lzma"), (b"\x78", "zlib"), (b"\x93NUMPY", "npy")]:
        if d.startswith(magic):
            return k
    if len(d) >= 262 and d[257:262] == b"ustar":
        return "tar"
    if d[:1] == b"\x80" or d[:1] in b"(}]cS":
        return "pickle"
    return "other"


def decompress(k, d):
    try:
        return {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress,
                "lzma": lzma.decompress, "zlib": zlib.decompress}[k](d)
    except Exception:
        return None


def handle(d, depth=0):
    k = kind(d)
    put("sniff", d[:65536])
    if k == "pickle":
        put("pickle", d)
    elif k == "npy":
        put("npy", d[:4096])
        end = d.find(b"\n", 10)
        if end > 0:
            handle(d[end + 1:], depth + 1)  # an object array's pickle
    elif k == "tar":
        put("tar", d)
        try:
            with tarfile.open(fileobj=io.BytesIO(d)) as tf:
                for m in tf.getmembers():
                    if m.isfile():
                        handle(tf.extractfile(m).read(), depth + 1)
        except Exception:
            pass
    elif k == "zip":
        put("zip", d)
        try:
            with zipfile.ZipFile(io.BytesIO(d)) as zf:
                for n in zf.namelist():
                    handle(zf.read(n), depth + 1)
        except Exception:
            pass
    elif k in ("gzip", "bz2", "xz", "lzma", "zlib", "lz4"):
        put("compress", d, 1 << 16)
        x = decompress(k, d) if depth < 3 else None
        if x and len(x) < 1 << 20:
            handle(x, depth + 1)
    elif len(d) >= 512 and len(d) % 512 == 0:
        put("tar", d)


def tensor_targets(name, d):
    """The tensor-view targets for a file (by its bytes, and by name for ONNX)."""
    if len(d) > 9 and d[8:9] == b"{" or name.endswith(".safetensors"):
        put("tensor_safetensors", d)
    if d.startswith(b"GGUF"):
        put("tensor_gguf", d)
    if name.endswith(".onnx"):
        put("tensor_onnx", d)
    if d.startswith(b"\x93NUMPY"):
        put("tensor_numpy", d)
    if d.startswith(TORCH_LEGACY_MAGIC):
        put("tensor_torch_legacy", d)
    elif kind(d) == "pickle":
        put("tensor_pickled_numpy", d)
    if d.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(d)) as zf:
                names = zf.namelist()
        except Exception:
            return
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            put("tensor_torch_zip", d)
        elif names and all(n.endswith(".npy") for n in names):
            put("tensor_numpy", d)


for dirpath, _, files in os.walk(FIXTURES):
    for name in files:
        if not name.endswith((".py", ".tsv")):
            with open(os.path.join(dirpath, name), "rb") as f:
                d = f.read()
            handle(d)
            tensor_targets(name, d)

# tensor_analysis: mode, dtype selector, rank, then 2 * rank u16 dims and strides, then
# the bytes (see fuzz_targets/tensor_analysis.rs).
import random, struct
rng = random.Random(7)
floats = struct.pack("<256f", *[rng.gauss(0, 0.02) for _ in range(256)])
elf = bytearray(floats)
for i, b in enumerate(b"\x7fELF\x02\x01\x01" * 8):
    elf[4 * i] = b  # in the low byte of each float
for mode, sel, dims, body in [(0, 1, [256], floats), (0, 1, [16, 16], bytes(elf)),
                              (1, 1, [16, 16, 1, 0, 16, 0], floats), (0, 3, [128], floats[:256]),
                              (0, 2, [8, 16], floats[:256]), (0x80, 1, [300], floats),
                              (0, 20 + 8, [64], floats[:72])]:
    rank = len(dims) // 2 if mode & 1 else len(dims)
    words = dims if mode & 1 else dims + [0] * len(dims)
    put("tensor_analysis", bytes([mode, sel, rank]) + struct.pack(f"<{len(words)}H", *words) + body)

payload = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93." * 8
for seed in [gzip.compress(payload), zlib.compress(payload), bz2.compress(payload),
             lzma.compress(payload, format=lzma.FORMAT_XZ),
             lzma.compress(payload, format=lzma.FORMAT_ALONE),
             lzma.compress(b"", format=lzma.FORMAT_XZ),
             gzip.compress(b"a") + gzip.compress(b"b")]:
    put("compress", seed)


def tar_of(fmt, entries):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as tf:
        for name, typ, data, link in entries:
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.size = typ, link or "", len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return bio.getvalue()


long = "model/" + "d" * 120 + "/data.pkl"
put("tar", tar_of(tarfile.PAX_FORMAT, [(long, tarfile.REGTYPE, b"\x80\x02N.", None),
                                       ("l", tarfile.SYMTYPE, b"", "/" + "x" * 120)]))
put("tar", tar_of(tarfile.GNU_FORMAT, [(long, tarfile.REGTYPE, b"hello", None),
                                       ("h", tarfile.LNKTYPE, b"", "x" * 130)]))
put("tar", tar_of(tarfile.USTAR_FORMAT, [("p/" * 60 + "f", tarfile.REGTYPE, b"z" * 600, None),
                                         ("dev", tarfile.CHRTYPE, b"", None),
                                         ("fifo", tarfile.FIFOTYPE, b"", None),
                                         ("dir/", tarfile.DIRTYPE, b"", None)]))

for t in TARGETS + TENSOR_TARGETS:
    d = os.path.join(OUT, t)
    print(t, len(os.listdir(d)) if os.path.isdir(d) else 0)
