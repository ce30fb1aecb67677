#!/usr/bin/python3
"""The closed-loop benchmark: one fine-tuning (same data, steps, seed) done
seven ways by examples/train_loop.py while a real spectrumd watches:

  full            every parameter trains;
  static          Spectrum 25 %, the daemon's selection of the base model;
  dynamic         Spectrum 25 %, re-selected at every checkpoint by a
                  daemon without hysteresis (stickiness 0);
  dynamic+hyst    the same with the daemon's stickiness = --stickiness;
  dynamic+lr      dynamic (stickiness 0) with the daemon's SNR-guided LR
                  scales (/lr_scales, refreshed at every re-selection,
                  applied through param groups: train_loop --lr-scales
                  daemon);
  dynamic+flat-lr its control: dynamic (stickiness 0) with every layer
                  matrix at the mean of those scales, (lr_scale_max + 1)/2
                  = 1.5 (embeddings and lm_head 1, as /lr_scales gives
                  them), so the same extra learning rate without the SNR
                  ranking;
  random          25 % per type at random (the same count per type).

Every daemon-backed variant gets its own fresh daemon (database, port),
so stickiness is a per-variant setting and no run sees another's history.
With --seeds A,B,... the whole set repeats per fine-tuning seed (batch
order, random set); the base model (seed --base-seed) is shared. Prints a
table (eval loss over steps, mean over seeds; final eval loss mean ± sd
and per seed; wall time, tokens/s, peak RSS, trainable parameters, churn
per checkpoint, load average), writes results.json after every run (a
rerun with the same WORKDIR keeps the runs already done), a Markdown table
and a PNG plot (python3-matplotlib, skipped with a note when missing).

Usage: closed_loop.py BUILDDIR SRCDIR WORKDIR [--base-steps N] [--steps N]
       [--save-every N] [--seeds 0,1,2] [--stickiness K]
       [--variants a,b] [--train-args '...'] [--report-only]
       [--png FILE] [--md FILE]
"""
import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "it"))
import spdtest  # noqa: E402

# name -> (train_loop --mode, uses a daemon, stickiness key, LR scales:
# None, "daemon" or "flat")
VARIANTS = {
    "full": ("full", False, None, None),
    "static": ("static", True, "zero", None),
    "dynamic": ("dynamic", True, "zero", None),
    "dynamic+hyst": ("dynamic", True, "k", None),
    "dynamic+lr": ("dynamic", True, "zero", "daemon"),
    "dynamic+flat-lr": ("dynamic", True, "zero", "flat"),
    "random": ("random", False, None, None),
}
LR_SCALE_MAX = 2.0      # the daemon's default lr_scale_max
ORDER = tuple(VARIANTS)


def trainer(src, *args, log=None):
    t0 = time.monotonic()
    subprocess.run([sys.executable, os.path.join(src, "examples",
                                                 "train_loop.py"), *args],
                   check=True, stderr=log)
    return time.monotonic() - t0


def done(d, run, step=None):
    cps = d.obj("/checkpoints?run=" + run) or []
    return any(c["status"] == "done" and (step is None or c["step"] == step)
               for c in cps)


def load():
    return [round(x, 2) for x in os.getloadavg()]


def save(path, results):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, path)


def flat_scales(init, path):
    """Writes the flat control's --lr-scales file: every layer matrix of
    the model in init at (LR_SCALE_MAX + 1) / 2; returns path."""
    with open(os.path.join(init, "model.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        names = [k for k in json.loads(f.read(n)) if k != "__metadata__"]
    with open(path, "w") as f:
        json.dump({k: (LR_SCALE_MAX + 1) / 2 for k in names
                   if k.startswith("model.layers.") and
                   k.endswith("_proj.weight")}, f)
    return path


def run_variant(a, name, seed, base, init, log):
    """One fine-tuning; returns train_loop's result dict plus the
    conditions it ran under."""
    mode, daemon, stick, lr = VARIANTS[name]
    sd = os.path.join(a.work, "s%d" % seed)
    tag = name.replace("+", "-")
    out = os.path.join(sd, "ft-" + tag)
    res = os.path.join(sd, "ft-%s.json" % tag)
    subprocess.run(["rm", "-rf", out, os.path.join(sd, "db-" + tag)],
                   check=True)
    os.makedirs(out)
    os.makedirs(os.path.join(sd, "db-" + tag))
    k = a.stickiness if stick == "k" else 0
    d = None
    args = ["finetune", "--init", init, "--out", out, "--mode", mode,
            "--run", "dyn", "--static-run", "base", "--steps", str(a.steps),
            "--save-every", str(a.save_every), "--seed", str(seed),
            "--result", res, *shlex.split(a.train_args)]
    if lr == "daemon":
        args += ["--lr-scales", "daemon"]
    elif lr == "flat":
        args += ["--lr-scales", flat_scales(init, os.path.join(
            sd, "flat-scales.json"))]
    l0 = load()
    try:
        if daemon:
            d = spdtest.Daemon(os.path.join(a.build, "spectrumd"),
                               os.path.join(sd, "db-" + tag), None,
                               extra=("--watch", "base=" + base, "--watch",
                                      "dyn=" + out, "--stickiness", str(k)))
            if d.port is None or not spdtest.wait_for(
                    lambda: done(d, "base", a.base_steps), 120):
                sys.exit("closed_loop: the daemon did not analyse the base")
            args += ["--daemon", d.base]
        print("# seed %d: %s (load %s)" % (seed, name, l0), flush=True)
        trainer(a.src, *args, log=log)
    finally:
        if d is not None:
            d.stop()
    r = json.load(open(res))
    r.update(variant=name, seed=seed, stickiness=k if daemon else None,
             lr_scales=lr, load_before=l0, load_after=load())
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("src")
    ap.add_argument("work")
    ap.add_argument("--base-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--save-every", type=int, default=25)
    ap.add_argument("--seeds", default="0",
                    help="fine-tuning seeds, comma-separated (default 0)")
    ap.add_argument("--base-seed", type=int, default=0)
    ap.add_argument("--stickiness", type=int, default=2,
                    help="the daemon's stickiness for dynamic+hyst")
    ap.add_argument("--variants", default=",".join(ORDER))
    ap.add_argument("--train-args", default="",
                    help="extra train_loop.py options for every run "
                    "(e.g. a smaller model for a smoke test)")
    ap.add_argument("--report-only", action="store_true",
                    help="no training: the table and plot of WORKDIR's "
                    "results.json")
    ap.add_argument("--png", default=None)
    ap.add_argument("--md", default=None)
    a = ap.parse_args()
    a.seeds = [int(x) for x in a.seeds.split(",") if x != ""]
    a.variants = [v for v in a.variants.split(",") if v]
    bad = [v for v in a.variants if v not in VARIANTS]
    if bad or not a.seeds:
        ap.error("unknown variants %s (known: %s)" % (bad, ",".join(ORDER))
                 if bad else "no seeds")
    os.makedirs(a.work, exist_ok=True)
    rpath = os.path.join(a.work, "results.json")
    if a.report_only:
        report(json.load(open(rpath)), a)
        return
    cond = {"base_steps": a.base_steps, "steps": a.steps,
            "save_every": a.save_every, "base_seed": a.base_seed,
            "stickiness": a.stickiness, "train_args": a.train_args}
    results = json.load(open(rpath)) if os.path.exists(rpath) else {}
    if results.get("conditions", {}).get("setup") != cond:
        results = {"runs": {}}
    import torch
    results["conditions"] = {
        "setup": cond, "cpus": os.cpu_count(), "machine": platform.node(),
        "python": platform.python_version(), "torch": torch.__version__,
        "note": "a shared machine: other jobs ran beside the bench; "
        "load averages (1, 5, 15 min) are recorded per run"}
    base = os.path.join(a.work, "base")
    log = open(os.path.join(a.work, "train.log"), "a")
    if not os.path.isdir(os.path.join(base, "checkpoint-%d" % a.base_steps)):
        print("# training the base model (%d steps, manual pages)" %
              a.base_steps, flush=True)
        l0 = load()
        dt = trainer(a.src, "base", "--out", base, "--steps",
                     str(a.base_steps), "--save-every", str(a.base_steps),
                     "--seed", str(a.base_seed), "--result",
                     os.path.join(a.work, "base.json"),
                     *shlex.split(a.train_args), log=log)
        results["base"] = {"wall_s": dt, "load_before": l0,
                           "load_after": load()}
        print("# base model: %.0f s" % dt, flush=True)
    init = os.path.join(base, "checkpoint-%d" % a.base_steps)
    t_start = time.time()
    for seed in a.seeds:
        runs = results["runs"].setdefault(str(seed), {})
        for name in a.variants:
            if name in runs:
                continue
            runs[name] = run_variant(a, name, seed, base, init, log)
            save(rpath, results)
    results["conditions"]["bench_wall_s"] = time.time() - t_start
    save(rpath, results)
    report(results, a)


def mean(xs):
    return sum(xs) / len(xs)


def sd(xs):
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def churns(r):
    """Modules changed at each re-selection (the saves between the first
    and the last; the first has none, the last re-selects nothing)."""
    return [s["churn"] for s in r["saves"][1:-1] if s["churn"] is not None]


def report(results, a):
    """Prints the table (and writes it, and the plot): over the seeds for
    which every requested variant ran."""
    variants = a.variants
    seeds = [s for s in (str(x) for x in a.seeds)
             if all(v in results["runs"].get(s, {}) for v in variants)]
    if not seeds:
        print("# no seed with every variant done")
        return
    R = {v: [results["runs"][s][v] for s in seeds] for v in variants}
    first = R[variants[0]][0]
    steps = [s["step"] for s in first["saves"]]
    s0 = steps[0]
    n = len(seeds)
    rows = ["| | " + " | ".join(variants) + " |",
            "|---" * (len(variants) + 1) + "|"]

    def row(label, f):
        rows.append("| %s | %s |" % (label, " | ".join(
            f(R[v]) for v in variants)))

    def fmean(key, fmt="%.4f", at=-1):
        return lambda rs: fmt % mean([r["saves"][at][key] for r in rs])
    tag = " (mean of %d seeds)" % n if n > 1 else ""
    for i, st in enumerate(steps):
        row("eval loss @%d%s" % (st - s0, tag if i == 0 else ""),
            fmean("eval_loss", at=i))
    if n > 1:
        row("final eval loss, mean ± sd (n=%d)" % n, lambda rs: "%.4f ± %.4f"
            % (mean([r["final_eval_loss"] for r in rs]),
               sd([r["final_eval_loss"] for r in rs])))
        row("final eval loss per seed (%s)" % ",".join(seeds), lambda rs:
            " / ".join("%.4f" % r["final_eval_loss"] for r in rs))
        ref = "dynamic" if "dynamic" in R else variants[0]
        row("final − %s, same seed: mean ± sd" % ref, lambda rs: "%+.4f ± "
            "%.4f" % (mean(d := [r["final_eval_loss"] - q["final_eval_loss"]
                                 for r, q in zip(rs, R[ref])]), sd(d)))
    row("base-domain loss @%d (forgetting)" % (steps[-1] - s0),
        fmean("other_eval_loss"))
    row("base-domain loss @0", fmean("other_eval_loss", at=0))
    row("wall time (s)%s" % tag, lambda rs: "%.1f" %
        mean([r["wall_s"] for r in rs]))
    row("of which waiting for the daemon (s)", lambda rs: "%.1f" %
        mean([r["daemon_wait_s"] for r in rs]))
    row("tokens/s", lambda rs: "%.0f" % mean([r["tokens_per_s"]
                                               for r in rs]))
    row("peak RSS (MiB, max)", lambda rs: "%.0f" %
        max(r["peak_rss_mib"] for r in rs))
    row("trainable parameters", lambda rs: "%d (%.0f %%)" % (
        rs[0]["saves"][0]["trainable"],
        100.0 * rs[0]["saves"][0]["trainable"] / rs[0]["total_parameters"]))
    row("AdamW state elements at the end", lambda rs: "%d" %
        rs[0]["optimizer_state_elements"])
    def dyn(f):
        return lambda rs: f(rs) if rs[0]["mode"] == "dynamic" else "–"
    row("churn per checkpoint, seed %s" % seeds[0], dyn(lambda rs: ",".join(
        str(c) for c in churns(rs[0]))))
    row("churn, total per run%s" % tag, dyn(lambda rs: "%.1f" %
        mean([sum(churns(r)) for r in rs])))
    row("load average (1 min) at start / end", lambda rs: " / ".join(
        "%.1f" % mean([r[k][0] for r in rs])
        for k in ("load_before", "load_after")))
    table = "\n".join(rows)
    print(table)
    if a.md:
        with open(a.md, "w") as f:
            f.write(table + "\n")
    if a.png:
        plot(R, variants, s0, n, a.png)


def plot(R, variants, s0, n, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("# python3-matplotlib missing: no plot")
        return
    fig, ax = plt.subplots(1, 4, figsize=(15, 3.4), dpi=80,
                           gridspec_kw={"width_ratios": (3, 3, 3, 2)})
    for v in variants:
        rs = R[v]
        xs = [s["step"] - s0 for s in rs[0]["saves"]]
        for k, key in enumerate(("eval_loss", "other_eval_loss")):
            ys = [[r["saves"][i][key] for r in rs] for i in range(len(xs))]
            line, = ax[k].plot(xs, [mean(y) for y in ys], marker=".",
                               label=v)
            if n > 1:
                ax[k].fill_between(xs, [min(y) for y in ys],
                                   [max(y) for y in ys], alpha=0.15,
                                   color=line.get_color())
        fin = [r["final_eval_loss"] for r in rs]
        vi = variants.index(v)
        ax[3].errorbar([vi], [mean(fin)], yerr=[sd(fin)], fmt="o",
                       color=line.get_color(), capsize=3)
        ax[3].plot([vi] * len(fin), fin, ".", color=line.get_color(),
                   alpha=0.5)
        if VARIANTS[v][0] == "dynamic":
            cs = [churns(r) for r in rs]
            ax[2].plot(xs[1:1 + len(cs[0])], [mean(c) for c in zip(*cs)],
                       marker=".", label=v, color=line.get_color())
    ax[0].set_title("held-out licenses (fine-tuning domain)", fontsize=9)
    ax[1].set_title("held-out man pages (base domain)", fontsize=9)
    ax[2].set_title("selection churn (modules changed)", fontsize=9)
    for x in ax[:2]:
        x.set_ylabel("eval loss (nats/byte)")
    ax[2].set_ylabel("modules added + removed")
    for x in ax[:3]:
        x.set_xlabel("fine-tuning step")
    for x in ax:
        x.grid(alpha=0.3)
    ax[3].set_title("final eval loss, mean ± sd", fontsize=9)
    ax[3].set_xticks(range(len(variants)))
    ax[3].set_xticklabels(variants, rotation=35, ha="right", fontsize=7)
    ax[0].legend(fontsize=7)
    ax[2].legend(fontsize=7)
    if n > 1:
        fig.suptitle("mean of %d seeds (bands: min–max)" % n, fontsize=9)
    fig.tight_layout()
    fig.savefig(png)
    print("# plot: %s" % png)


if __name__ == "__main__":
    main()
