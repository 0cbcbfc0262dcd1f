"""Small helpers shared by the ref/*_golden.py scripts (random init, stored-name checks, versions)."""
import json
import os

import torch


def scaled_init(model, std, seed, norm_markers=("LayerNorm", ".ln_", "norm")):
    """Overwrite every parameter with random values of a larger spread than HF's init.

    Normalization gains (name contains a norm marker and ends with 'weight') = 1 + std*N(0,1);
    everything else (weights, biases, norm biases) = std*N(0,1). Iterates named_parameters()
    in order with its own generator, so the result depends only on (model structure, std, seed).
    Tied parameters appear once in named_parameters() and are set once.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            is_norm = any(m in name for m in norm_markers)
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + std * noise)
            else:
                p.copy_(std * noise)


def stored_shapes(st_path):
    from safetensors import safe_open
    with safe_open(st_path, "pt") as f:
        return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}


def check_params_stored(model, stored):
    """Every (deduplicated) parameter must be stored under its own name with its own shape."""
    for n, p in model.named_parameters():
        if n not in stored:
            raise SystemExit(f"parameter {n} not in saved model.safetensors ({sorted(stored)})")
        if stored[n] != list(p.shape):
            raise SystemExit(f"shape mismatch for {n}: {stored[n]} vs {list(p.shape)}")


def versions():
    import safetensors
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "safetensors": safetensors.__version__}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def setup():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
