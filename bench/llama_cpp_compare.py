#!/usr/bin/env python3
"""Side by side: `lmkit bench generate` vs llama.cpp's `llama-bench` on the
same GGUF files, with the machine's memory bandwidth measured in the same
run, written to bench/RESULTS_llama.md.

The files come from `lmkit init --preset {1B|7B}` + `lmkit quantize` (see
--make). llama.cpp is not built here: pass the path of a llama-bench you
built yourself (PEERS.md says how).

    python3 bench/llama_cpp_compare.py --lmkit build/lmkit \
        --llama-bench /path/to/llama-bench --models /tmp/m \
        [--threads 2] [--rounds 2] [--pp 512] [--tg 128]

Each model runs `rounds` times alternating the two tools; the best round
of each is kept (the machine is shared; the load average is recorded).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

MODELS = [("1B F16", "1b_f16.gguf"), ("1B Q8_0", "1b_q8_0.gguf"), ("1B Q4_0", "1b_q4_0.gguf"),
          ("1B Q4_K", "1b_q4_k.gguf"), ("7B Q4_0", "7b_q4_0.gguf")]
HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return -1, "timeout"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def drop_from_page_cache(path):
    """Evicts the file's cached pages, so that it is read from disk as a
    model is after a restart: the page cache then holds it in the large
    folios readahead makes, rather than in whatever pieces the writer that
    produced it left (a freshly quantized file can be mapped mostly in 4 KiB
    pages, and reads ~5% slower). Both tools then decode from that cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def membw(threads, path):
    """(GB/s reading fresh memory, GB/s reading the model file's map)."""
    exe = "/tmp/lmkit_membw"
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(os.path.join(HERE, "membw.c")):
        subprocess.run(["cc", "-O3", "-march=native", "-ffast-math", "-fopenmp", os.path.join(HERE, "membw.c"), "-o", exe],
                       check=True)
    rc, out = run([exe, str(threads), path], 300)
    m = re.search(r"^GB/s ([0-9.]+)", out, re.M)
    mf = re.search(r"^file GB/s ([0-9.]+)", out, re.M)
    return (float(m.group(1)) if m else float("nan"), float(mf.group(1)) if mf else float("nan"))


def lmkit_run(a, path):
    rc, out = run([a.lmkit, "bench", "generate", "--model", path, "--prompt-tokens", str(a.pp), "--gen-tokens", str(a.tg),
                   "--threads", str(a.threads), "--json"], a.timeout)
    try:
        j = json.loads(out[out.index("{"):])
    except ValueError:
        return None
    if rc != 0:
        return None
    return {"pp": j["prefill_tok_s"], "tg": j["decode_tok_s"], "gb": j["weight_gb"], "step_gb": j["decode_read_gb"],
            "rss": round(j["rss_mib"]), "hwm": round(j["peak_rss_mib"])}


def llama_run(a, path):
    rc, out = run([a.llama_bench, "-m", path, "-p", str(a.pp), "-n", str(a.tg), "-t", str(a.threads), "-r", "1", "-o", "json"],
                  a.timeout)
    if rc != 0:
        return None
    try:
        rows = json.loads(out[out.index("["):])
    except ValueError:
        return None
    r = {}
    for row in rows:
        key = "pp" if row.get("n_prompt", 0) > 0 else "tg"
        r[key] = float(row["avg_ts"])
    return r if "pp" in r and "tg" in r else None


def best(a, b, key):
    vals = [x[key] for x in (a, b) if x and key in x]
    return max(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmkit", required=True)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--models", required=True, help="folder with the GGUF files (names in MODELS)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS_llama.md"))
    ap.add_argument("--only", default="", help="comma-separated labels to run (default all present)")
    a = ap.parse_args()

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = re.search(r"Model name:\s*(.*)", cpu).group(1).strip()
    flags = re.search(r"Flags:\s*(.*)", cpu).group(1).split()
    isa = [f for f in ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8") if f in flags]
    rows = []
    for label, fname in MODELS:
        path = os.path.join(a.models, fname)
        if not os.path.exists(path) or (a.only and label not in a.only.split(",")):
            continue
        drop_from_page_cache(path)
        bw, bw_file = membw(a.threads, path)
        load_before = loadavg()
        ours, theirs = None, None
        for _ in range(a.rounds):
            o = lmkit_run(a, path)
            t = llama_run(a, path)
            if o:
                ours = dict(o, pp=best(ours, o, "pp"), tg=best(ours, o, "tg"))
            theirs = {"pp": best(theirs, t, "pp"), "tg": best(theirs, t, "tg")} if (t or theirs) else None
        rows.append((label, fname, bw, bw_file, load_before, loadavg(), ours, theirs))
        print(label, bw, bw_file, ours, theirs, file=sys.stderr, flush=True)

    def f(x, d=1):
        return "n/a" if x is None else f"{x:.{d}f}"

    lines = [
        "# LLaMA inference: lmkit vs llama.cpp",
        "",
        f"Written by `bench/llama_cpp_compare.py` on {time.strftime('%Y-%m-%d %H:%M')}.",
        f"Machine: {model_name}, {os.cpu_count()} cores, ISA {' '.join(isa)}; threads {a.threads}; "
        f"`lmkit bench generate --prompt-tokens {a.pp} --gen-tokens {a.tg} --threads {a.threads}` vs "
        f"`llama-bench -p {a.pp} -n {a.tg} -t {a.threads}` on the same files, best of {a.rounds} alternating rounds.",
        "Bandwidth: `bench/membw.c` just before each model: the faster of PEERS.md's parallel float sum and a "
        "four-stream prefetching sum over 512 MiB (here the second reads ~1.5x faster); the decode bound is "
        "bandwidth / bytes read per decode step. `file GB/s`: the same four-stream sum over the model file's read-only map (the "
        "page cache the weights are decoded from), and the decode speed as a share of that bound. The bytes are those one "
        "decode step reads (`read/step GB`): every tensor, except that of an untied embedding table only the token's row. "
        "Each model file is dropped from the page cache before its bandwidth pass, which reads it back from disk; both "
        "tools then map that cache.",
        "",
        "| model | weights GB | read/step GB | mem GB/s | file GB/s | load avg before → after | lmkit pp t/s | llama.cpp pp t/s | pp ratio | "
        "lmkit tg t/s | llama.cpp tg t/s | tg ratio | lmkit tg % of bound | % of file bound | lmkit RSS / peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, fname, bw, bw_file, l0, l1, o, t in rows:
        gb = o["gb"] if o else None
        step = o["step_gb"] if o else None
        ppr = o["pp"] / t["pp"] if o and t and t.get("pp") else None
        tgr = o["tg"] / t["tg"] if o and t and t.get("tg") else None
        bound = 100 * o["tg"] * step / bw if o and step and bw == bw else None
        fbound = 100 * o["tg"] * step / bw_file if o and step and bw_file == bw_file else None
        lines.append(f"| {label} | {f(gb, 3)} | {f(step, 3)} | {f(bw)} | {f(bw_file)} | {l0} → {l1} | {f(o and o['pp'])} | "
                     f"{f(t and t.get('pp'))} | {f(ppr, 2)} | {f(o and o['tg'], 2)} | {f(t and t.get('tg'))} | {f(tgr, 2)} | "
                     f"{f(bound)}% | {f(fbound)}% | "
                     f"{o['rss'] if o else 'n/a'} / {o['hwm'] if o else 'n/a'} |")
    with open(a.out, "w") as fo:
        fo.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
