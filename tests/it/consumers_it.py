#!/usr/bin/python3
"""Consumers of snr_results_*.json select what spectrumd selects.

The reference Spectrum script and Axolotl's Spectrum plugin read the flat
{module: {"snr", "type"}} file, group it by type, sort each group with
Python's sorted(..., key=snr, reverse=True) and keep int(n * p / 100)
(script) or int(n * fraction) (plugin), then prepend the lm_head and
embed_tokens patterns (REFERENCE.md). This test writes checkpoints with NaN
and Inf weights, +inf SNRs (an all-zero matrix, a single non-zero value), zero
SNRs, exact ties (identical matrices, also across layers 2 and 10, which
sort the other way by name) and a type that is mostly NaN, runs
`spectrumd scan` and the daemon on them, applies those few lines of Python
to spectrumd's JSON, and checks that they give spectrumd's YAML, for
several percentages. The daemon's GET /snr_results.json must serve scan's
file byte for byte, and Axolotl's rule on it must give /selection's
modules. Non-finite matrices must be in no output (DESIGN.md §2). Prints
TAP. Standard library only.

Usage: consumers_it.py BUILDDIR
"""
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SPD = os.path.join(BUILD, "spectrumd")
PERCENTS = (1, 10, 25, 34, 50, 75, 100)
R, C = 24, 16


def write_safetensors(path, tensors):
    """tensors: {name: (rows, cols, [floats])}, written as F32, names in
    sorted order as the safetensors library writes them."""
    header, data = {}, b""
    for name in sorted(tensors):
        r, c, vals = tensors[name]
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": [r, c],
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def random_matrix(rng, spike):
    """Noise plus a rank-one spike of strength spike."""
    u = [rng.gauss(0, 1) for _ in range(R)]
    v = [rng.gauss(0, 1) for _ in range(C)]
    return [rng.gauss(0, 1) + spike * u[i] * v[j] / math.sqrt(R * C)
            for i in range(R) for j in range(C)]


def special(kind, rng):
    """Matrices with a known non-finite or edge-case SNR."""
    if kind == "zero":          # s1 == 0: SNR +inf
        return [0.0] * (R * C)
    if kind == "single":        # one non-zero value, noise sum 0: +inf
        m = [0.0] * (R * C)
        m[2 * C + 3] = rng.uniform(1, 2)
        return m
    if kind == "halfzero":      # s = (1,…,1,0,…,0): τ ≥ s1, SNR 0
        m = [0.0] * (R * C)
        for i in range(C // 2):
            m[i * C + i] = 1.0
        return m
    m = random_matrix(rng, 3)
    m[5] = float("nan") if kind == "nan" else float("inf")
    return m


def checkpoint(path, seed):
    """Writes one checkpoint; returns the modules with non-finite weights
    and those with +inf SNR."""
    rng = random.Random(seed)
    t, nonfinite, inf = {}, set(), set()
    spikes = [rng.uniform(0, 12) for _ in range(12)]
    plan = {
        "mlp.down_proj": {3: "nan", 7: "zero"},
        "self_attn.q_proj": {2: "single", 4: "inf", 6: "halfzero",
                             8: "halfzero"},
        "mlp.up_proj": {0: "halfzero", 1: "halfzero", 2: "halfzero",
                        3: "halfzero"},
        "self_attn.k_proj": {0: "nan", 1: "nan", 3: "inf"},
    }
    tie = None
    for typ, specials in plan.items():
        layers = 12 if typ in ("mlp.down_proj", "self_attn.q_proj") else 4
        for layer in range(layers):
            mod = "model.layers.%d.%s" % (layer, typ)
            kind = specials.get(layer)
            if kind is not None:
                m = special(kind, rng)
            elif typ == "mlp.down_proj" and layer in (5, 9, 10) and tie:
                m = tie                     # exact ties with layer 1
            else:
                m = random_matrix(rng, spikes[layer])
                if typ == "mlp.down_proj" and layer == 1:
                    tie = m
            if kind in ("nan", "inf"):
                nonfinite.add(mod)
            if kind in ("zero", "single"):
                inf.add(mod)
            t[mod + ".weight"] = (R, C, m)
    t["model.embed_tokens.weight"] = (40, C, [rng.gauss(0, 1)
                                              for _ in range(40 * C)])
    t["lm_head.weight"] = (40, C, [rng.gauss(0, 1) for _ in range(40 * C)])
    t["model.norm.weight"] = (1, C, [1.0] * C)
    os.makedirs(path)
    write_safetensors(os.path.join(path, "model.safetensors"), t)
    with open(os.path.join(path, "trainer_state.json"), "w") as f:
        json.dump({"global_step": int(path.rsplit("-", 1)[1]),
                   "log_history": []}, f)
    return nonfinite, inf


def consumer(results, p, axolotl):
    """The reference script's (axolotl False) or Axolotl's selection."""
    groups = {}
    for mod, v in results.items():
        groups.setdefault(v["type"], []).append((mod, v))
    picked = {"lm_head", "model.embed_tokens"}      # prepended by both
    for layers in groups.values():
        ranked = sorted(layers, key=lambda x: x[1]["snr"], reverse=True)
        n = int(len(layers) * (p / 100)) if axolotl else \
            int(len(layers) * p / 100)
        picked.update(mod for mod, _ in ranked[:n])
    return picked


def yaml_modules(text):
    """The modules of an unfrozen_parameters YAML."""
    mods = set()
    for line in text.splitlines():
        if not line.startswith("- "):
            continue
        e = line[2:].strip()
        if e.startswith("^") and e.endswith(".weight$"):
            e = e[1:-len(".weight$")]
        mods.add(e)
    return mods


def scan(ckpt, out, p):
    """Runs scan; returns (exit status, stderr, JSON text, YAML text)."""
    r = subprocess.run([SPD, "scan", "-q", "--backend", "cpu",
                        "--top-percent", str(p), "--out", out, ckpt],
                       capture_output=True, text=True)
    slug = os.path.basename(ckpt).replace("_", "-")
    js = ya = ""
    try:
        js = open(os.path.join(out, "snr_results_%s.json" % slug)).read()
        ya = open(os.path.join(out, "snr_results_%s_unfrozenparameters_"
                               "%dpercent.yaml" % (slug, p))).read()
    except OSError:
        pass
    return r.returncode, r.stderr, js, ya


def test_scan(tmp, ckpt, nonfinite, inf):
    """Returns scan's YAML modules by percentage and its JSON text."""
    yamls = {}
    scan_json = None
    for p in PERCENTS:
        st, err, js, ya = scan(ckpt, os.path.join(tmp, "out-%d" % p), p)
        if p == PERCENTS[0]:
            ok(st == 3 and "warning: %d matrices" % len(nonfinite) in err and
               all("  %s.weight: " % m in err for m in nonfinite),
               "scan: exit 3 (got %d), warning block lists the %d "
               "non-finite matrices" % (st, len(nonfinite)))
            results = json.loads(js)
            ok("NaN" not in js and not nonfinite & set(results),
               "snr_results JSON: non-finite matrices left out, no NaN")
            ok(all(results[m]["snr"] == math.inf for m in inf) and
               "Infinity" in js,
               "snr_results JSON: +inf SNRs as Infinity")
            zeros = [m for m, v in results.items() if v["snr"] == 0]
            ok(len(zeros) >= 6, "zero SNRs present (%d)" % len(zeros))
            ties = [results["model.layers.%d.mlp.down_proj" % i]["snr"]
                    for i in (1, 5, 9, 10)]
            ok(len(set(ties)) == 1, "tied SNRs are equal: %r" % ties[:1])
        ours = yaml_modules(ya)
        yamls[p] = ours
        scan_json = js if scan_json is None else scan_json
        ok(js == scan_json, "p %d: scan's JSON does not depend on p" % p)
        results = json.loads(js)
        ref = consumer(results, p, axolotl=False)
        axo = consumer(results, p, axolotl=True)
        ok(ours == ref, "p %d: reference script's rule on the JSON == "
           "spectrumd YAML (%d modules)%s" % (p, len(ours), "" if ours == ref
                                              else ": +%s -%s" %
                                              (sorted(ref - ours),
                                               sorted(ours - ref))))
        ok(ours == axo, "p %d: Axolotl's rule on the JSON == spectrumd YAML"
           % p)
        ok(not ours & nonfinite, "p %d: no non-finite matrix selected" % p)
    ok(inf <= yamls[100] and all(m in yamls[p] for p in (25, 34, 50)
                                 for m in inf
                                 if "q_proj" in m or "down_proj" in m),
       "+inf SNRs are selected first")
    return yamls, scan_json


def test_served_json(d, scan_json):
    """GET /snr_results.json is scan's file, byte for byte, named for
    Axolotl; Axolotl's rule on it gives /selection's modules."""
    served = None
    for q in ("run=demo&step=latest", "step=100"):
        st, h, body = d.get("/snr_results.json?" + q)
        served = served or body
        ok(st == 200 and body.decode() == scan_json and
           h.get("Content-Type") == "application/json",
           "daemon: /snr_results.json?%s == scan's snr_results JSON "
           "(%d bytes)" % (q, len(body)))
    ok(h.get("Content-Disposition") ==
       'attachment; filename="snr_results_demo.json"',
       "daemon: named snr_results_demo.json (%s)"
       % h.get("Content-Disposition"))
    st, h, _ = d.get("/snr_results.json?name=meta-llama/Llama_3")
    ok(st == 200 and h.get("Content-Disposition") ==
       'attachment; filename="snr_results_meta-llama-Llama-3.json"',
       "daemon: name= gives Axolotl's slug (%s)"
       % h.get("Content-Disposition"))
    st, h, body = d.get("/snr_results.json?step=100", method="HEAD")
    ok(st == 200 and body == b"" and "Content-Disposition" in h,
       "daemon: HEAD /snr_results.json")
    st, _, _ = d.get("/snr_results.json?step=99")
    ok(st == 404, "daemon: /snr_results.json of an unknown step: 404")
    served = json.loads(served or b"{}")
    for p in PERCENTS:
        st, v, _ = d.json("/selection?format=json&top_percent=%d" % p)
        axo = consumer(served, p, axolotl=True)
        mods = set(v.get("modules", [])) if st == 200 else set()
        ok(mods == axo, "p %d: Axolotl's rule on the served JSON == "
           "/selection modules (%d)%s" % (p, len(mods), "" if mods == axo
                                          else ": +%s -%s" %
                                          (sorted(axo - mods),
                                           sorted(mods - axo))))


def test_daemon(tmp, run, yamls, scan_json, nonfinite):
    d = spdtest.Daemon(SPD, tmp, run)
    try:
        ok(wait_for(lambda: (d.obj("/checkpoints") or [{}])[0].get("status")
                    == "done", 60), "daemon: checkpoint analysed")
        c = (d.obj("/checkpoints") or [{}])[0]
        ok(c.get("nonfinite") == len(nonfinite),
           "daemon: /checkpoints nonfinite %r == %d" % (c.get("nonfinite"),
                                                       len(nonfinite)))
        st, _, body = d.get("/metrics")
        ok(("spectrumd_nonfinite_matrices_total %d\n" % len(nonfinite)) in
           body.decode(), "daemon: /metrics counts them")
        for p in PERCENTS:
            st, _, body = d.get("/selection?format=yaml&top_percent=%d" % p)
            ok(st == 200 and yaml_modules(body.decode()) == yamls[p],
               "daemon: /selection yaml p %d == scan's YAML" % p)
        st, v, _ = d.json("/selection?format=json&top_percent=100")
        ok(st == 200 and not nonfinite & set(v.get("modules", [])),
           "daemon: /selection json never holds a non-finite matrix")
        test_served_json(d, scan_json)
    finally:
        ok(d.stop() == 0, "daemon: SIGTERM exits 0")


def test_nan_embedding(tmp):
    """An embedding with NaN weights is not listed either (the consumers
    prepend lm_head/embed_tokens by hard-coded name whatever the JSON says:
    nothing spectrumd writes can change that)."""
    path = os.path.join(tmp, "emb", "checkpoint-1")
    os.makedirs(path)
    rng = random.Random(5)
    emb = [rng.gauss(0, 1) for _ in range(40 * C)]
    emb[3] = float("nan")
    write_safetensors(os.path.join(path, "model.safetensors"), {
        "model.embed_tokens.weight": (40, C, emb),
        "lm_head.weight": (40, C, [rng.gauss(0, 1) for _ in range(40 * C)]),
        "model.layers.0.mlp.down_proj.weight": (R, C, random_matrix(rng, 5)),
    })
    st, err, js, ya = scan(path, os.path.join(tmp, "emb-out"), 100)
    ok(st == 3 and "model.embed_tokens" not in js and
       "embed_tokens" not in ya and "^lm_head.weight$" in ya,
       "NaN embedding: left out of JSON and YAML, lm_head kept (exit %d)"
       % st)


def main():
    with tempfile.TemporaryDirectory(prefix="spd-consumers.") as tmp:
        run = os.path.join(tmp, "run")
        ckpt = os.path.join(run, "checkpoint-100")
        nonfinite, inf = checkpoint(ckpt, 11)
        yamls, scan_json = test_scan(tmp, ckpt, nonfinite, inf)
        test_daemon(tmp, run, yamls, scan_json, nonfinite)
        test_nan_embedding(tmp)
    spdtest.finish()


if __name__ == "__main__":
    main()
