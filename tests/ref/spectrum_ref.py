#!/usr/bin/python3
"""spectrum_ref.py: an independent float64 reference of the Spectrum SNR
(DESIGN.md section 1) for the spectrumd tests. numpy only: no torch and no
project code; it parses safetensors itself.

usage: spectrum_ref.py PATH [--out FILE] [--include-1d] [--max-dim N]
       spectrum_ref.py PATH --select P
       spectrum_ref.py PATH [--compare SNR_RESULTS_JSON [--tol 1e-5]]
                            [--select P --yaml UNFROZEN_YAML]

PATH is a .safetensors file, a directory holding model.safetensors or
model.safetensors.index.json (shards), or such an index. Prints the flat
{module: {"snr": x, "type": t}} JSON of the reference script (json.dump,
indent 4, bare Infinity/NaN) or writes it to --out; with --select P the
unfrozen_parameters YAML of the top P percent (DESIGN.md section 2)
instead. --compare checks a snr_results_*.json written by spectrumd: same
modules, same types, SNRs within --tol relative (inf == inf, NaN == NaN);
--yaml checks its YAML against this selection (entries under one comment
may come in another order). Both exit 1 listing each difference; the last
line sums up. Exit 2 on bad input.
"""
import argparse
import json
import math
import mmap
import os
import struct
import sys

import numpy as np

HEADER_MAX = 100_000_000
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1}


def f8_table(ebits, mbits, bias, fn):
    """The 256 values of an 8-bit float format, from its bit layout.
    fn: no Inf, only S.1..1.1..1 is NaN (E4M3); else IEEE-like (E5M2)."""
    emax, mmax = (1 << ebits) - 1, (1 << mbits) - 1
    vals = []
    for b in range(256):
        e, m = (b >> mbits) & emax, b & mmax
        if (fn and e == emax and m == mmax) or (not fn and e == emax and m):
            v = math.nan
        elif not fn and e == emax:
            v = math.inf
        elif e == 0:
            v = m / (1 << mbits) * 2.0 ** (1 - bias)
        else:
            v = (1 + m / (1 << mbits)) * 2.0 ** (e - bias)
        vals.append(-v if b & 0x80 else v)
    return np.array(vals, dtype=np.float64)


F8 = {"F8_E4M3": f8_table(4, 3, 7, True), "F8_E5M2": f8_table(5, 2, 15, False)}


def decode(buf, dtype, count):
    """count little-endian elements of dtype in buf, as float64."""
    if dtype in F8:
        return F8[dtype][np.frombuffer(buf, np.uint8, count)]
    if dtype == "BF16":
        bits = np.frombuffer(buf, "<u2", count).astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64)
    code = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}[dtype]
    return np.frombuffer(buf, code, count).astype(np.float64)


def fail(msg):
    print("spectrum_ref: " + msg, file=sys.stderr)
    sys.exit(2)


def read_file(path):
    """Yields (name, dtype, shape, float64 array or None) of one file, in
    data order, after checking the header against the file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            fail(f"{path}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > HEADER_MAX or 8 + n > size:
            fail(f"{path}: header length {n} out of bounds")
        header = json.loads(f.read(n).decode("utf-8"))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    header.pop("__metadata__", None)
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    end = 0
    for name, t in entries:
        begin, stop = t["data_offsets"]
        count = math.prod(t["shape"])
        if begin != end or stop < begin:
            fail(f"{path}: {name}: offsets {begin},{stop} not contiguous")
        if t["dtype"] in SIZES and stop - begin != count * SIZES[t["dtype"]]:
            fail(f"{path}: {name}: {stop - begin} bytes for {t['shape']}")
        end = stop
    if 8 + n + end != size:
        fail(f"{path}: size {size} != 8 + {n} + {end}")
    for name, t in entries:
        begin, stop = t["data_offsets"]
        arr = None
        if t["dtype"] in SIZES:
            buf = memoryview(mm)[8 + n + begin:8 + n + stop]
            arr = decode(buf, t["dtype"], math.prod(t["shape"]))
            arr = arr.reshape(t["shape"])
        yield name, t["dtype"], t["shape"], arr


def read_model(path):
    """Yields the tensors of a file, a checkpoint directory or an index."""
    if os.path.isdir(path):
        index = os.path.join(path, "model.safetensors.index.json")
        single = os.path.join(path, "model.safetensors")
        path = index if os.path.exists(index) else single
    if not os.path.isfile(path):
        fail(f"{path}: no such file")
    if not path.endswith(".json"):
        yield from read_file(path)
        return
    with open(path) as f:
        wmap = json.load(f)["weight_map"]
    files = list(dict.fromkeys(wmap.values()))
    for shard in files:
        want = {k for k, v in wmap.items() if v == shard}
        for t in read_file(os.path.join(os.path.dirname(path), shard)):
            want.discard(t[0])
            yield t
        if want:
            fail(f"{shard}: misses {sorted(want)[:3]} named by the index")


def module_type(module):
    """The dotted suffix after the first all-digit part, else the module."""
    parts = module.split(".")
    for i, p in enumerate(parts):
        if p and all("0" <= c <= "9" for c in p):
            return ".".join(parts[i + 1:])
    return module


def snr(w):
    """Spectrum SNR of the 2-D float64 matrix w, exactly as DESIGN.md 1."""
    if not np.all(np.isfinite(w)):
        return math.nan
    rows, cols = w.shape
    if min(rows, cols) == 0:
        return math.nan
    s = np.linalg.svd(w, compute_uv=False)          # dgesdd, descending
    q75, q25 = np.quantile(s, [0.75, 0.25])         # linear interpolation
    tau = (q75 - q25) / 1.349 * (1 + math.sqrt(min(rows, cols) /
                                               max(rows, cols)))
    signal = s[s > tau].sum()
    noise = s[s <= tau].sum() if np.any(s <= tau) else 1.0
    if s[0] == 0 or noise == 0:
        return math.inf
    return float(signal / noise / s[0])


def analyse(path, include_1d, max_dim):
    """{module: {"snr", "type"}} of every .weight matrix of the model."""
    out = {}
    for name, dtype, shape, arr in read_model(path):
        if not name.endswith(".weight") or arr is None:
            continue
        if len(shape) == 1 and include_1d:
            arr = arr.reshape(1, -1)
        elif len(shape) != 2:
            continue
        if max_dim and max(arr.shape) > max_dim:
            fail(f"{name}: {arr.shape} is over --max-dim {max_dim}")
        module = name[:-len(".weight")]
        out[module] = {"snr": snr(arr), "type": module_type(module)}
    return out


def rel_err(a, b):
    """Relative error of b against a (0 when both NaN or equal infinities),
    or None when they cannot be compared (kinds differ)."""
    if not isinstance(b, (int, float)) or isinstance(b, bool):
        return None
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else None
    if math.isinf(a) or math.isinf(b):
        return 0.0 if a == b else None
    return abs(a - b) / abs(a) if a != 0 else abs(b)


def compare(ours, path, tol):
    """Differences with spectrumd's snr_results file: (lines, summary)."""
    with open(path) as f:
        theirs = json.load(f)
    bad = [f"missing in {path}: {m}" for m in ours if m not in theirs]
    bad += [f"not in reference: {m}" for m in theirs if m not in ours]
    worst = 0.0
    for m in ours.keys() & theirs.keys():
        a, b = ours[m]["snr"], theirs[m].get("snr")
        err = rel_err(a, b)
        if err is None or err > tol:
            bad.append(f"{m}: snr {b!r}, reference {a!r}")
        if err is not None and err > worst:
            worst = err
        if theirs[m].get("type") != ours[m]["type"]:
            bad.append(f"{m}: type {theirs[m].get('type')!r}, "
                       f"reference {ours[m]['type']!r}")
    n = len(ours.keys() & theirs.keys())
    return sorted(bad), f"compared {n} matrices, max rel err {worst:.3g}"


HEADS = {"lm_head", "embed_out"}
INPUTS = {"embed_tokens", "wte", "word_embeddings", "embed_in",
          "tok_embeddings", "embeddings"}


def layer_of(module):
    """The first all-digit part of module as a number, else -1."""
    for p in module.split("."):
        if p and all("0" <= c <= "9" for c in p):
            return int(p)
    return -1


def embedding_kind(module):
    """0 for an output head, 1 for an input embedding, else None."""
    if layer_of(module) != -1:
        return None
    last = module.split(".")[-1]
    if last in HEADS or module == "output":
        return 0
    return 1 if last in INPUTS else None


def select(ours, p):
    """DESIGN section 2: (embeddings, [(type, selected modules)]). Per
    type keep n*p//100 by SNR: +inf first, NaN last, ties by layer."""
    emb = [m for k in (0, 1) for m in ours if embedding_kind(m) == k]
    types = {}
    for m, v in ours.items():
        if embedding_kind(m) is None:
            types.setdefault(v["type"], []).append(m)

    def rank(m):
        s = ours[m]["snr"]
        if math.isnan(s):
            return (2, 0.0, layer_of(m))
        return (0, 0.0, layer_of(m)) if s == math.inf else \
            (1, -s, layer_of(m))
    return emb, [(t, sorted(ms, key=rank)[:len(ms) * p // 100])
                 for t, ms in types.items()]


def yaml_text(emb, types):
    """The reference script's unfrozen_parameters YAML."""
    lines = ["unfrozen_parameters:"] + [f"- ^{m}.weight$" for m in emb]
    for t, ms in types:
        lines += [f"# {t} layers"] + [f"- {m}" for m in ms]
    return "\n".join(lines) + "\n"


def yaml_sections(text):
    """The YAML as its first line, then (comment, sorted entries) runs; the
    entries before the first comment (the embeddings) have comment ""."""
    lines = text.splitlines() or [""]
    runs = [("", [])]
    for line in lines[1:]:
        if line.startswith("#"):
            runs.append((line, []))
        else:
            runs[-1][1].append(line)
    return [lines[0]] + [(c, sorted(e)) for c, e in runs]


def compare_yaml(ours, p, path):
    """Differences with spectrumd's YAML: (lines, summary). The order of
    the entries under one comment may differ, the sets may not."""
    emb, types = select(ours, p)
    want = yaml_text(emb, types)
    with open(path) as f:
        got = f.read()
    n = len(emb) + sum(len(ms) for _, ms in types)
    if got == want:
        return [], f"selection at {p}% agrees ({n} modules)"
    if yaml_sections(got) == yaml_sections(want):
        return [], f"selection at {p}% agrees ({n} modules, other order)"
    return [f"{path} differs from the reference:"] + \
        ["  " + line for line in want.splitlines()], \
        f"selection at {p}% differs"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path")
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    ap.add_argument("--compare", metavar="SNR_RESULTS_JSON")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--select", type=int, metavar="P",
                    help="top percent: print the YAML, or check --yaml")
    ap.add_argument("--yaml", metavar="FILE",
                    help="check spectrumd's unfrozen_parameters YAML")
    ap.add_argument("--include-1d", action="store_true",
                    help="1-D weights as 1 x d matrices (SNR 1.0)")
    ap.add_argument("--max-dim", type=int, default=4096,
                    help="refuse matrices with a larger side (0: no limit)")
    args = ap.parse_args()
    if args.yaml and args.select is None:
        ap.error("--yaml needs --select P")
    if args.select is not None and not 0 < args.select <= 100:
        ap.error("--select must be in 1..100")
    ours = analyse(args.path, args.include_1d, args.max_dim)
    if args.compare or args.yaml:
        bad, summary = [], []
        if args.compare:
            lines, line = compare(ours, args.compare, args.tol)
            bad, summary = bad + lines, summary + [line]
        if args.yaml:
            lines, line = compare_yaml(ours, args.select, args.yaml)
            bad, summary = bad + lines, summary + [line]
        for line in bad:
            print(line)
        print("; ".join(summary))
        return 1 if bad else 0
    if args.select is not None:
        sys.stdout.write(yaml_text(*select(ours, args.select)))
        return 0
    if args.out:
        with open(args.out, "w") as f:
            json.dump(ours, f, indent=4)
    else:
        json.dump(ours, sys.stdout, indent=4)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
