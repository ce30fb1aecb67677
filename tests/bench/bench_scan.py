#!/usr/bin/python3
"""Benchmark: `spectrumd scan` against the reference computation on the same
Llama-7B-shaped matrices, in the same run. Prints medians per matrix shape
and per checkpoint, the ratio against torch `svdvals` (what the reference
script uses) and numpy, peak RSS as the model grows, and the largest SNR
error against a float64 computation.

usage: bench_scan.py BUILDDIR [--layers 2] [--reps 3] [--np-reps 1]
                     [--rss-layers 1,2,4] [--keep DIR]
Needs /usr/bin/python3 with numpy and torch (Debian python3-numpy,
python3-torch). A benchmark, not a test: run it on a quiet machine.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import spectrum_ref  # noqa: E402  (our independent safetensors reader)


def fixture(fix, path, layers):
    subprocess.run([fix, "checkpoint", path, "--layers", str(layers),
                    "--hidden", "4096", "--intermediate", "11008",
                    "--kv-dim", "4096", "--vocab", "32000", "--dtype", "BF16",
                    "--only", "self_attn,mlp", "--no-1d", "-q"], check=True)


def scan(spd, path, out, timings, threads=None):
    """Runs one scan; returns (wall seconds, peak RSS MiB)."""
    cmd = ["/usr/bin/time", "-f", "%M", spd, "scan", "-q", "--out", out,
           "--timings", timings, path]
    if threads:
        cmd[4:4] = ["--threads", str(threads)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("scan failed: " + p.stderr)
    rss_kib = int(p.stderr.strip().splitlines()[-1])
    return wall, rss_kib / 1024


def read_timings(path):
    rows = []
    for line in open(path):
        if line.startswith("name") or line.startswith("#"):
            continue
        name, r, c, dt, sec, snr = line.rstrip("\n").split("\t")[:6]
        rows.append((name, int(r), int(c), float(sec), float(snr)))
    return rows


def median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def snr_of(s, rows, cols):
    """DESIGN.md §1 from descending singular values (float64)."""
    q75, q25 = np.quantile(s, [0.75, 0.25])
    tau = (q75 - q25) / 1.349 * (1 + math.sqrt(min(rows, cols) / max(rows, cols)))
    signal = s[s > tau].sum()
    noise = s[s <= tau].sum() if np.any(s <= tau) else 1.0
    if s[0] == 0 or noise == 0:
        return math.inf
    return float(signal / noise / s[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--np-reps", type=int, default=1)
    ap.add_argument("--rss-layers", default="1,2,4")
    ap.add_argument("--keep", help="work directory to keep (default: temp)")
    a = ap.parse_args()
    spd = os.path.join(a.build, "spectrumd")
    fix = os.path.join(a.build, "tests", "spectrumd-fixture")
    work = a.keep or tempfile.mkdtemp(prefix="spd-bench.")
    os.makedirs(work, exist_ok=True)
    ncores = os.cpu_count()
    torch.set_num_threads(ncores)
    print(f"# machine: {ncores} cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}")
    try:
        ck = os.path.join(work, "llama7b-%dl" % a.layers)
        if not os.path.isdir(ck):
            fixture(fix, ck, a.layers)
        # --- spectrumd scan, a.reps times -------------------------------
        walls, rsss, per = [], [], {}
        for i in range(a.reps):
            tpath = os.path.join(work, "timings-%d.tsv" % i)
            w, r = scan(spd, ck, os.path.join(work, "out"), tpath)
            walls.append(w)
            rsss.append(r)
            for name, rows, cols, sec, _ in read_timings(tpath):
                per.setdefault((rows, cols), []).append(sec)
        rows_t = read_timings(os.path.join(work, "timings-0.tsv"))
        counts = {}
        for _, r, c, _, _ in rows_t:
            counts[(r, c)] = counts.get((r, c), 0) + 1
        # --- the same matrices through torch and numpy ------------------
        mats = {}
        for name, dt, shape, arr in spectrum_ref.read_model(ck):
            if arr is not None and len(shape) == 2 and tuple(shape) not in mats:
                mats[tuple(shape)] = arr.astype(np.float32)
        t_torch, t_np = {}, {}
        for shp, w32 in mats.items():
            tw = torch.from_numpy(w32)
            torch.linalg.svdvals(tw[:64, :64])      # warm-up
            t_torch[shp] = median_time(lambda: torch.linalg.svdvals(tw), a.reps)
            t_np[shp] = median_time(
                lambda: np.linalg.svd(w32, compute_uv=False), a.np_reps)
        # --- SNR error against float64 -----------------------------------
        ours = {}
        for name, r, c, sec, snr in rows_t:
            ours[name] = snr
        max_err = 0.0
        for name, dt, shape, arr in spectrum_ref.read_model(ck):
            if arr is None or len(shape) != 2:
                continue
            w = arr if shape[0] <= shape[1] else arr.T
            lam = np.linalg.eigvalsh(w @ w.T)           # float64 Gram
            s = np.sqrt(np.maximum(lam, 0))[::-1]
            ref = snr_of(s, *shape)
            max_err = max(max_err, abs(ours[name] - ref) / abs(ref))
        # --- report ----------------------------------------------------------
        print(f"\n## {a.layers} Llama-7B layers, BF16, {len(rows_t)} matrices "
              f"(medians of {a.reps}; numpy of {a.np_reps})\n")
        print("| shape | n | spectrumd s | torch svdvals s | numpy svd s | "
              "vs torch | vs numpy |")
        print("|---|---|---|---|---|---|---|")
        tot_t = tot_n = 0.0
        for shp in sorted(counts):
            ms = statistics.median(per[shp])
            tot_t += t_torch[shp] * counts[shp]
            tot_n += t_np[shp] * counts[shp]
            print(f"| {shp[0]}x{shp[1]} | {counts[shp]} | {ms:.3f} | "
                  f"{t_torch[shp]:.3f} | {t_np[shp]:.3f} | "
                  f"{t_torch[shp] / ms:.2f}x | {t_np[shp] / ms:.2f}x |")
        wall = statistics.median(walls)
        print(f"| checkpoint (wall) | {len(rows_t)} | {wall:.2f} | "
              f"{tot_t:.2f} | {tot_n:.2f} | {tot_t / wall:.2f}x | "
              f"{tot_n / wall:.2f}x |")
        print(f"\nspectrumd peak RSS: {statistics.median(rsss):.0f} MiB; "
              f"max SNR relative error vs float64: {max_err:.2e}")
        # --- RSS as the model grows ----------------------------------------
        print("\n| layers | checkpoint GB | scan s | peak RSS MiB |")
        print("|---|---|---|---|")
        for n in [int(x) for x in a.rss_layers.split(",") if x]:
            p = os.path.join(work, "llama7b-%dl" % n)
            if not os.path.isdir(p):
                fixture(fix, p, n)
            size = sum(os.path.getsize(os.path.join(p, f))
                       for f in os.listdir(p) if f.endswith(".safetensors"))
            w, r = scan(spd, p, os.path.join(work, "out"),
                        os.path.join(work, "t.tsv"))
            print(f"| {n} | {size / 1e9:.2f} | {w:.1f} | {r:.0f} |")
            if n != a.layers and not a.keep:
                shutil.rmtree(p)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
