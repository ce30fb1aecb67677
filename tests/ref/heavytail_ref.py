#!/usr/bin/python3
"""Independent float64 reference for the heavy-tail metrics (docs/heavytail.md).

Written from the definition, not from src/heavytail.c: a brute-force scan
that refits every candidate xmin from scratch with numpy.

  heavytail_ref.py < values        fit one spectrum (singular values, any
                                   order), print key=value like
                                   tests/heavytail_tool
  heavytail_ref.py --check TOOL [--fixture DIR]
                                   generate spectra (planted power laws,
                                   random-matrix spectra, edge cases, and
                                   with --fixture every matrix of that
                                   checkpoint, read by spectrum_ref.py),
                                   run TOOL on each and compare: TAP output
"""
import os
import subprocess
import sys

import numpy as np

EVALS_THRESH = 1e-5     # eigenvalues at or below are not fitted
MIN_EVALS = 10          # fewer eigenvalues above it: no fit
TOL = 1e-9              # relative agreement required of the C code


def fit(sv):
    """The metrics of the singular values sv as a dict (NaN when no fit)."""
    sv = np.asarray(sv, dtype=np.float64)
    out = dict(status="ok", n_evals=0, n_tail=0, xmin=np.nan,
               alpha=np.nan, ks=np.nan, sigma=np.nan,
               alpha_weighted=np.nan, log_spectral_norm=np.nan)
    if not np.isfinite(sv).all():
        out["status"] = "nonfinite"
        return out
    lam = np.sort(sv * sv)
    with np.errstate(divide="ignore"):
        out["log_spectral_norm"] = float(np.log10(lam[-1]))
    ev = lam[lam > EVALS_THRESH]
    out["n_evals"] = int(ev.size)
    if ev.size < MIN_EVALS:
        out["status"] = "too_few"
        return out
    levels = np.unique(ev)
    if levels.size < 2:
        out["status"] = "flat"
        return out
    best = None
    for xmin in levels[:-1]:
        tail = ev[ev >= xmin]
        n = tail.size
        alpha = 1.0 + n / np.sum(np.log(tail / xmin))
        # The empirical CDF at each distinct tail value: the share of the
        # tail strictly below it (the powerlaw package's convention).
        x = np.unique(tail)
        emp = np.searchsorted(tail, x, side="left") / n
        model = 1.0 - (x / xmin) ** (1.0 - alpha)
        d = float(np.max(np.abs(model - emp)))
        if best is None or d < best[0]:
            best = (d, float(xmin), float(alpha), int(n))
    d, xmin, alpha, n = best
    out.update(xmin=xmin, alpha=alpha, ks=d, n_tail=n,
               sigma=(alpha - 1.0) / np.sqrt(n),
               alpha_weighted=alpha * np.log10(lam[-1]))
    return out


def fmt(res):
    """One line of key=value pairs."""
    keys = ("status", "n_evals", "n_tail", "xmin", "alpha", "ks", "sigma",
            "alpha_weighted", "log_spectral_norm")
    return " ".join("%s=%s" % (k, res[k]) for k in keys)


def as_f32(s):
    """Singular values rounded to float32 (what the daemon keeps), sorted
    descending, as exact float64 numbers."""
    s = np.asarray(s, dtype=np.float64).astype(np.float32)
    return np.sort(s.astype(np.float64))[::-1]


def pareto(rng, alpha, xmin, n):
    """n eigenvalues with density ∝ λ^-alpha above xmin."""
    return xmin * rng.random(n) ** (-1.0 / (alpha - 1.0))


def planted(seed, alpha, ntail, nbulk):
    """sqrt of a power-law tail above xmin = 1 plus a bulk below it."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([pareto(rng, alpha, 1.0, ntail),
                          rng.uniform(0.05, 0.95, nbulk)])
    return as_f32(np.sqrt(lam))


def svals(a):
    return as_f32(np.linalg.svd(a, compute_uv=False))


def gaussian(seed, n, m):
    rng = np.random.default_rng(seed)
    return svals(rng.standard_normal((n, m)) / np.sqrt(m))


def lowrank(seed, n, m, r):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, r))
    v = rng.standard_normal((r, m))
    scale = np.linspace(8, 2, r)[None, :] / np.sqrt(n * m) * np.sqrt(n)
    return svals((u * scale) @ v + rng.standard_normal((n, m)) / np.sqrt(m))


def student(seed, n, m, df):
    rng = np.random.default_rng(seed)
    return svals(rng.standard_t(df, (n, m)) * 0.02)


def fixture_cases(path):
    """(name, singular values) of every 2-D .weight tensor of a checkpoint."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import spectrum_ref
    for name, _, shape, arr in spectrum_ref.read_model(path):
        if name.endswith(".weight") and arr is not None and len(shape) == 2:
            yield "fixture " + name, svals(arr)


def cases():
    """(name, singular values) of every generated spectrum."""
    for a in (2.0, 3.0, 4.0):
        for seed in (1, 2):
            yield ("planted alpha=%g seed %d" % (a, seed),
                   planted(seed, a, 400, 1200))
    yield "planted alpha=2.5 k=4096", planted(11, 2.5, 1000, 3096)
    yield "Gaussian 256x512", gaussian(3, 256, 512)
    yield "Gaussian 512x512", gaussian(4, 512, 512)
    yield "Gaussian 300x1000", gaussian(5, 300, 1000)
    yield "low rank 8 + noise 512x768", lowrank(6, 512, 768, 8)
    yield "Student-t df=3 384x640", student(7, 384, 640, 3)
    yield "Student-t df=2.5 1024x1536", student(8, 1024, 1536, 2.5)
    yield "ten values", as_f32(np.arange(10, 0, -1) * 0.5)
    yield "nine values: too few", as_f32(np.arange(9, 0, -1) * 0.5)
    yield "ties", as_f32(np.repeat([3.0, 2.0, 2.0, 1.5, 1.0], 7))
    z = np.concatenate([planted(9, 3.0, 100, 100), np.zeros(50)])
    yield "zeros and values below the threshold", as_f32(
        np.concatenate([z, np.full(20, 1e-3)]))
    yield "all equal: flat", as_f32(np.full(40, 0.7))
    yield "all zero", as_f32(np.zeros(32))
    yield "NaN", np.array([3.0, np.nan, 1.0] + [0.5] * 20)
    yield "large scale", as_f32(planted(10, 2.5, 200, 300) * 1e12)


def parse(line):
    """key=value line → dict of str/int/float."""
    out = {}
    for tok in line.split():
        k, _, v = tok.partition("=")
        out[k] = v
    return out


def close(a, b):
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    if np.isinf(a) or np.isinf(b):
        return a == b
    return abs(a - b) <= TOL * max(abs(b), 1e-300)


def compare(name, got, want):
    """Differences between the C tool's line and the reference, in words."""
    bad = []
    if got.get("status") != want["status"]:
        return ["status %s, want %s" % (got.get("status"), want["status"])]
    for k in ("n_evals", "n_tail"):
        if int(got[k]) != want[k]:
            bad.append("%s %s, want %d" % (k, got[k], want[k]))
    if float(got["xmin"]) != want["xmin"] and not (
            np.isnan(want["xmin"]) and np.isnan(float(got["xmin"]))):
        bad.append("xmin %s, want %r" % (got["xmin"], want["xmin"]))
    for k in ("alpha", "ks", "sigma", "alpha_weighted", "log_spectral_norm"):
        if not close(float(got[k]), float(want[k])):
            bad.append("%s %s, want %r" % (k, got[k], want[k]))
    return bad


def check(tool, fixture):
    n = fails = 0
    every = list(cases())
    if fixture:
        every += list(fixture_cases(fixture))
    for name, sv in every:
        n += 1
        text = "\n".join(repr(float(x)) for x in sv) + "\n"
        p = subprocess.run([tool], input=text, capture_output=True,
                           text=True, timeout=120)
        want = fit(sv)
        if p.returncode != 0:
            bad = ["exit %d: %s%s" % (p.returncode, p.stdout, p.stderr)]
        else:
            bad = compare(name, parse(p.stdout), want)
        if bad:
            fails += 1
            print("not ok %d - %s: %s" % (n, name, "; ".join(bad)))
        else:
            print("ok %d - %s: %s alpha %.6g xmin %.6g n_tail %d D %.4g" % (
                n, name, want["status"], want["alpha"], want["xmin"],
                want["n_tail"], want["ks"]))
    print("1..%d" % n)
    return 1 if fails else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        return check(argv[2], None)
    if len(argv) == 5 and argv[1] == "--check" and argv[3] == "--fixture":
        return check(argv[2], argv[4])
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    vals = np.array([float(t) for t in sys.stdin.read().split()])
    print(fmt(fit(vals)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
