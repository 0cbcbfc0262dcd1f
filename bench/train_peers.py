#!/usr/bin/env python3
"""Training speed, lmkit against PyTorch, side by side in one run (issue 2).

    python3 bench/train_peers.py step [--threads 2] [--steps 5] [--rounds 3]
    python3 bench/train_peers.py shakespeare [--threads 2] [--iters 2000] [--rounds 3]
    python3 bench/train_peers.py seeds [--threads 2] [--iters 2000] [--seeds 1337,1,2,3,4]

`step`: one GPT-2 124M training step (batch 4 x 64, fp32, forward + backward +
AdamW) with `lmkit bench train` and with bench/torch_train_step.py
(transformers GPT2LMHeadModel), alternating the two `--rounds` times so load
changes on a shared machine hit both; reports the median ms/step of each
and their ratio, plus lmkit's achieved GFLOP/s against the machine's fp32
GEMM peak measured in the same run by bench_gemm (2048^3).

`shakespeare`: the nanoGPT CPU Shakespeare recipe (bytes, 4 layers, 4 heads,
width 128, context 64, batch 12, --iters steps, lr 1e-3 -> 1e-4, warmup 100,
beta2 0.99, wd 0.1, clip 1) with lmkit (prepare + train) and with
bench/torch_shakespeare.py, alternating the two `--rounds` times, reporting
the final validation loss and wall time of each and the median ratio.

`seeds`: the same recipe once per seed on each side, for the final
validation loss only (its spread from seed to seed is larger than any
difference between the two implementations).

Needs: build/lmkit and build/bench_gemm (cmake --build build --target bench_gemm),
pip install torch transformers. Writes its section of bench/RESULTS.md.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LMKIT = os.path.join(ROOT, "build", "lmkit")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")


def run(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return out.stdout


def machine():
    model = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    flags = open("/proc/cpuinfo").read()
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16") if f" {f}" in flags]
    return {"cpu": model, "cores": os.cpu_count(), "isa": isa, "load_avg": os.getloadavg()[0],
            "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M")}


def gemm_peak(threads):
    exe = os.path.join(ROOT, "build", "bench_gemm")
    if not os.path.exists(exe):
        return None
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = run([exe, "256", "0.3"], env)
    # the 2048^3 line of the own kernel: "... 2048x2048x2048 ... lmkit ... NNN GFLOP/s"
    peak = None
    for line in out.splitlines():
        if "2048" in line:
            nums = [float(x) for x in re.findall(r"(\d+\.\d+)", line)]
            if nums:
                peak = max(nums) if peak is None else max(peak, max(nums))
    return {"peak_gflops": peak, "raw": out}


def write_section(name, text):
    body = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    if start in body:
        body = re.sub(re.escape(start) + ".*?" + re.escape(end) + "\n?", block.replace("\\", "\\\\"), body, flags=re.S)
    else:
        body = body.rstrip() + "\n\n" + block
    with open(RESULTS + ".tmp", "w") as f:
        f.write(body)
    os.replace(RESULTS + ".tmp", RESULTS)


def step(a):
    m = machine()
    lm_times, pt_times, lm_gflops = [], [], []
    for r in range(a.rounds):
        lm = json.loads(run([LMKIT, "bench", "train", "--arch", "gpt2", "--preset", "124M", "--batch", "4",
                             "--seq-len", "64", "--steps", str(a.steps), "--threads", str(a.threads), "--json"]))
        lm_times.append(lm["ms_per_step"])
        lm_gflops.append(lm["gflops"])
        pt = json.loads(run([sys.executable, os.path.join(ROOT, "bench", "torch_train_step.py"), "--threads",
                             str(a.threads), "--batch", "4", "--seq-len", "64", "--steps", str(a.steps)]).strip().splitlines()[-1])
        pt_times.append(pt["ms_per_step"])
        print(f"round {r + 1}: lmkit {lm['ms_per_step']:.0f} ms, pytorch {pt['ms_per_step']:.0f} ms", file=sys.stderr)
    peak = gemm_peak(a.threads)
    lm_ms, pt_ms = statistics.median(lm_times), statistics.median(pt_times)
    gf = statistics.median(lm_gflops)
    res = {"lmkit_ms": lm_ms, "pytorch_ms": pt_ms, "ratio": lm_ms / pt_ms, "lmkit_gflops": gf,
           "gemm_peak_gflops": peak and peak["peak_gflops"], "machine": m}
    print(json.dumps(res))
    peak_txt = f"{peak['peak_gflops']:.0f}" if peak and peak["peak_gflops"] else "n/a"
    write_section("train-step", f"""## GPT-2 124M training step (issue 2)

`python3 bench/train_peers.py step --threads {a.threads} --steps {a.steps} --rounds {a.rounds}` —
batch 4 × 64, fp32, forward + backward + AdamW, {a.threads} threads, median over {a.rounds} alternating rounds
of {a.steps} timed steps each (after a warm-up step).

| | ms/step | ratio to PyTorch |
|---|---:|---:|
| lmkit (`lmkit bench train --preset 124M`) | {lm_ms:.0f} | {lm_ms / pt_ms:.2f} |
| PyTorch {torch_version()} (`bench/torch_train_step.py`) | {pt_ms:.0f} | 1.00 |

lmkit's whole step runs at {gf:.0f} GFLOP/s (matmul FLOPs / step time); the machine's fp32 GEMM
peak measured in the same run (bench_gemm, 2048³, best back end) is {peak_txt} GFLOP/s.
Rounds: lmkit {', '.join(f'{t:.0f}' for t in lm_times)} ms; PyTorch {', '.join(f'{t:.0f}' for t in pt_times)} ms.

Machine: {m['cpu']}, {m['cores']} cores, {', '.join(m['isa'])}; load average {m['load_avg']:.2f} at start; {m['date']}.
""")


def torch_version():
    try:
        import torch
        return torch.__version__
    except ImportError:
        return "?"


def lmkit_shakespeare(a, seed=1337):
    """One lmkit run of the recipe, prepare included: (wall s, val loss, curve)."""
    tmp = tempfile.mkdtemp(prefix="lmkit_shakespeare_")
    try:
        data = os.path.join(tmp, "data")
        t0 = time.time()
        run([LMKIT, "prepare", os.path.join(ROOT, "data", "tinyshakespeare", "input.txt"), "--tokenizer", "bytes",
             "--val-fraction", "0.1", "--out", data])
        run([LMKIT, "train", "--data", data, "--arch", "gpt2", "--n-layer", "4", "--n-head", "4", "--n-embd", "128",
             "--seq-len", "64", "--batch", "12", "--steps", str(a.iters), "--lr", "1e-3", "--min-lr", "1e-4",
             "--warmup", str(min(100, a.iters // 2)), "--beta2", "0.99", "--weight-decay", "0.1", "--clip", "1", "--eval-every",
             str(a.iters), "--eval-batches", "200", "--threads", str(a.threads), "--seed", str(seed), "--out", os.path.join(tmp, "run")])
        wall = time.time() - t0
        lines = [json.loads(l) for l in open(os.path.join(tmp, "run", "metrics.jsonl"))]
        val = [l["val_loss"] for l in lines if "val_loss" in l][-1]
        curve = [(l["step"], l["loss"]) for l in lines if l["step"] % max(1, a.iters // 10) == 0]
        if seed == 1337:
            shutil.copy(os.path.join(tmp, "run", "loss.svg"), os.path.join(ROOT, "docs", "shakespeare_loss.svg"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return wall, val, curve


def torch_shakespeare(a, seed=1337):
    """One PyTorch run of the recipe, whole script: (wall s, result JSON)."""
    t0 = time.time()
    pt = json.loads(run([sys.executable, os.path.join(ROOT, "bench", "torch_shakespeare.py"), "--iters", str(a.iters),
                         "--threads", str(a.threads), "--eval-batches", "200", "--seed", str(seed)]).strip().splitlines()[-1])
    return time.time() - t0, pt


def shakespeare(a):
    m = machine()
    # Alternating rounds: this shared machine's speed drifts by 10-15% over
    # minutes, and each pair of runs sees about the same machine.
    rounds = []
    for r in range(a.rounds):
        lm_wall, lm_val, curve = lmkit_shakespeare(a)
        pt_wall, pt = torch_shakespeare(a)
        rounds.append({"lmkit_wall_s": lm_wall, "lmkit_val_loss": lm_val, "pytorch_wall_s": pt_wall,
                       "pytorch_train_s": pt.get("wall_s"), "pytorch_val_loss": pt["val_loss"], "ratio": lm_wall / pt_wall})
        print(json.dumps(rounds[-1]), file=sys.stderr)
    ratio = statistics.median(r["ratio"] for r in rounds)
    res = {"rounds": rounds, "median_ratio": ratio, "machine": m}
    print(json.dumps(res))
    rows = "\n".join(f"| {i + 1} | {r['lmkit_val_loss']:.4f} | {r['lmkit_wall_s']:.1f} | {r['pytorch_val_loss']:.4f} | "
                     f"{r['pytorch_wall_s']:.1f} | {r['ratio']:.3f} |" for i, r in enumerate(rounds))
    write_section("shakespeare", f"""## nanoGPT Shakespeare recipe (issue 2)

`python3 bench/train_peers.py shakespeare --threads {a.threads} --iters {a.iters} --rounds {a.rounds}` — bytes, 4 layers,
4 heads, width 128, context 64, batch 12, {a.iters} steps, lr 1e-3 → 1e-4 (warmup 100, cosine), beta2 0.99,
weight decay 0.1, clip 1.0, no dropout; validation loss over 200 batches of the last 10% of the text. Each
round runs lmkit (`lmkit prepare` + `lmkit train`, end to end) and then PyTorch {torch_version()}
(`bench/torch_shakespeare.py`, the whole script) on the same machine state.

| round | lmkit val loss | lmkit wall (s) | PyTorch val loss | PyTorch wall (s) | ratio |
|---|---:|---:|---:|---:|---:|
{rows}

**Median ratio: {ratio:.3f}** (range {min(r['ratio'] for r in rounds):.3f}–{max(r['ratio'] for r in rounds):.3f}).
lmkit's training curve (step, loss): {', '.join(f'{s}: {l:.3f}' for s, l in curve)}; plot in docs/shakespeare_loss.svg.

Machine: {m['cpu']}, {m['cores']} cores, {', '.join(m['isa'])}; load average {m['load_avg']:.2f} at start; {m['date']}.
""")


def seeds(a):
    m = machine()
    rows = []
    for seed in [int(x) for x in a.seeds.split(",")]:
        lm_val = lmkit_shakespeare(a, seed)[1]
        pt_val = torch_shakespeare(a, seed)[1]["val_loss"]
        rows.append((seed, lm_val, pt_val))
        print(json.dumps({"seed": seed, "lmkit_val_loss": lm_val, "pytorch_val_loss": pt_val}), file=sys.stderr)
    lm_mean = statistics.mean(r[1] for r in rows)
    pt_mean = statistics.mean(r[2] for r in rows)
    lm_sd = statistics.stdev(r[1] for r in rows) if len(rows) > 1 else 0.0
    pt_sd = statistics.stdev(r[2] for r in rows) if len(rows) > 1 else 0.0
    print(json.dumps({"seeds": rows, "lmkit_mean": lm_mean, "pytorch_mean": pt_mean, "machine": m}))
    table = "\n".join(f"| {s} | {l:.4f} | {p:.4f} |" for s, l, p in rows)
    write_section("shakespeare_seeds", f"""## nanoGPT Shakespeare recipe: validation loss over seeds (issue 2)

`python3 bench/train_peers.py seeds --threads {a.threads} --iters {a.iters} --seeds {a.seeds}` — the recipe above,
once per seed on each side (the seed sets the initial weights and the training batches).

| seed | lmkit val loss | PyTorch val loss |
|---:|---:|---:|
{table}

**Mean: lmkit {lm_mean:.4f} (sd {lm_sd:.4f}), PyTorch {pt_mean:.4f} (sd {pt_sd:.4f})** over {len(rows)} seeds; nanoGPT
reports 1.88 for this recipe. Machine: {m['cpu']}, {m['cores']} cores; {m['date']}.
""")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("step")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--rounds", type=int, default=3)
    s = sub.add_parser("shakespeare")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--iters", type=int, default=2000)
    s.add_argument("--rounds", type=int, default=3)
    s = sub.add_parser("seeds")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--iters", type=int, default=2000)
    s.add_argument("--seeds", default="1337,1,2,3,4")
    a = ap.parse_args()
    {"step": step, "shakespeare": shakespeare, "seeds": seeds}[a.what](a)


if __name__ == "__main__":
    main()
