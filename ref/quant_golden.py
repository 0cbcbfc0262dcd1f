"""Golden data for lmkit's quantized block layouts, from the `gguf` Python
package (ggml's own reference implementation in numpy).

Writes tests/golden/quant/:
  <type>.blocks  random but valid blocks (K types, Q8_0, Q4_0)
  <type>.f32     gguf.quants.dequantize of those blocks
  <type>_src.f32 / <type>_q.blocks  random floats and gguf.quants.quantize
                 of them (Q8_0, Q4_0: the simple types whose quantizer is fixed)

Run: pip install gguf numpy; python3 ref/quant_golden.py
"""
import os
import numpy as np
from gguf import GGMLQuantizationType as T, quants

out = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "quant")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)

def f16_bytes(vals):
    return np.asarray(vals, dtype=np.float16).view(np.uint8)

def blocks(t, n):
    if t == T.Q8_0:
        b = rng.integers(0, 256, size=(n, 34), dtype=np.uint8)
        b[:, 0:2] = f16_bytes(rng.uniform(0.001, 0.05, n)).reshape(n, 2)
    elif t == T.Q4_0:
        b = rng.integers(0, 256, size=(n, 18), dtype=np.uint8)
        b[:, 0:2] = f16_bytes(rng.uniform(-0.05, 0.05, n)).reshape(n, 2)
    elif t == T.Q4_K:
        b = rng.integers(0, 256, size=(n, 144), dtype=np.uint8)
        b[:, 0:2] = f16_bytes(rng.uniform(0.001, 0.01, n)).reshape(n, 2)
        b[:, 2:4] = f16_bytes(rng.uniform(0.001, 0.01, n)).reshape(n, 2)
    elif t == T.Q6_K:
        b = rng.integers(0, 256, size=(n, 210), dtype=np.uint8)
        b[:, 208:210] = f16_bytes(rng.uniform(0.0001, 0.001, n)).reshape(n, 2)
    return b

for t, name in [(T.Q8_0, "q8_0"), (T.Q4_0, "q4_0"), (T.Q4_K, "q4_k"), (T.Q6_K, "q6_k")]:
    b = blocks(t, 4)
    y = quants.dequantize(b.reshape(-1), t).astype(np.float32)
    b.tofile(os.path.join(out, name + ".blocks"))
    y.tofile(os.path.join(out, name + ".f32"))

for t, name in [(T.Q8_0, "q8_0"), (T.Q4_0, "q4_0")]:
    x = rng.standard_normal(128).astype(np.float32)
    q = quants.quantize(x.reshape(1, -1), t)
    x.tofile(os.path.join(out, name + "_src.f32"))
    np.asarray(q, dtype=np.uint8).tofile(os.path.join(out, name + "_q.blocks"))
print("wrote", out)
