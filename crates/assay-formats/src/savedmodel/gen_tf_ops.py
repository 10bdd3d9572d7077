"""Writes tf_ops.txt: every op the installed TensorFlow registers, one per line, sorted.

    /work/fixenv/bin/python crates/assay-formats/src/savedmodel/gen_tf_ops.py

Uses TF_GetAllOpList() (the C++ registry: every op a SavedModel can name without
loading a custom op library), not tf.raw_ops (the Python-visible subset).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import op_def_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session as c  # noqa: E402

ops = op_def_pb2.OpList()
ops.ParseFromString(c.TF_GetBuffer(c.TF_GetAllOpList()))
names = sorted({o.name for o in ops.op})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_ops.txt")
with open(out, "w") as f:
    f.write(f"# {len(names)} ops registered by TensorFlow {tf.__version__} (TF_GetAllOpList)\n")
    f.write("\n".join(names) + "\n")
print(f"wrote {len(names)} ops to {out}", file=sys.stderr)
