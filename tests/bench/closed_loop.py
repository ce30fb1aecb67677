#!/usr/bin/python3
"""The closed-loop benchmark: one fine-tuning (same data, steps, seed) done
four ways by examples/train_loop.py while a real spectrumd watches:
full, Spectrum 25 % static (the daemon's selection of the base model),
Spectrum 25 % dynamic (re-selected at every checkpoint), random 25 % per
type. Prints a table (eval loss over steps, wall time, tokens/s, peak RSS,
trainable parameters, churn), writes results.json, a Markdown table and a
PNG plot (python3-matplotlib, skipped with a note when missing).

Usage: closed_loop.py BUILDDIR SRCDIR WORKDIR [--base-steps N] [--steps N]
       [--save-every N] [--png FILE] [--md FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "it"))
import spdtest  # noqa: E402

MODES = ("full", "static", "dynamic", "random")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("src")
    ap.add_argument("work")
    ap.add_argument("--base-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--save-every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default=None)
    ap.add_argument("--md", default=None)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    base = os.path.join(a.work, "base")
    log = open(os.path.join(a.work, "train.log"), "a")
    if not os.path.isdir(os.path.join(base, "checkpoint-%d" % a.base_steps)):
        print("# training the base model (%d steps, manual pages)" %
              a.base_steps, flush=True)
        dt = trainer(a.src, "base", "--out", base, "--steps",
                     str(a.base_steps), "--save-every", str(a.base_steps),
                     "--seed", str(a.seed), "--result",
                     os.path.join(a.work, "base.json"), log=log)
        print("# base model: %.0f s" % dt, flush=True)
    init = os.path.join(base, "checkpoint-%d" % a.base_steps)
    results = {}
    for mode in MODES:
        out = os.path.join(a.work, "ft-" + mode)
        subprocess.run(["rm", "-rf", out], check=True)
        os.makedirs(out)
    d = spdtest.Daemon(os.path.join(a.build, "spectrumd"), a.work, None,
                       extra=("--watch", "base=" + base,
                              "--watch", "dyn=" + os.path.join(
                                  a.work, "ft-dynamic")))
    try:
        if d.port is None or not spdtest.wait_for(
                lambda: done(d, "base", a.base_steps), 120):
            sys.exit("closed_loop: the daemon did not analyse the base")
        for mode in MODES:
            res = os.path.join(a.work, "ft-%s.json" % mode)
            print("# fine-tuning: %s" % mode, flush=True)
            trainer(a.src, "finetune", "--init", init, "--out",
                    os.path.join(a.work, "ft-" + mode), "--mode", mode,
                    "--daemon", d.base, "--run", "dyn", "--static-run",
                    "base", "--steps", str(a.steps), "--save-every",
                    str(a.save_every), "--seed", str(a.seed), "--result",
                    res, log=log)
            results[mode] = json.load(open(res))
    finally:
        d.stop()
    json.dump(results, open(os.path.join(a.work, "results.json"), "w"),
              indent=1)
    report(results, a)


def report(results, a):
    steps = [s["step"] for s in results["full"]["saves"]]
    s0 = steps[0]
    head = "| | " + " | ".join(m for m in MODES) + " |"
    rows = [head, "|---" * (len(MODES) + 1) + "|"]

    def row(label, f):
        rows.append("| %s | %s |" % (label, " | ".join(
            f(results[m]) for m in MODES)))
    for i, st in enumerate(steps):
        row("eval loss @%d" % (st - s0), lambda r, i=i: "%.4f" %
            r["saves"][i]["eval_loss"])
    row("base-domain loss @%d (forgetting)" % (steps[-1] - s0), lambda r:
        "%.4f" % r["saves"][-1]["other_eval_loss"])
    row("base-domain loss @0", lambda r: "%.4f" %
        r["saves"][0]["other_eval_loss"])
    row("wall time (s)", lambda r: "%.1f" % r["wall_s"])
    row("of which waiting for the daemon (s)", lambda r: "%.1f" %
        r["daemon_wait_s"])
    row("tokens/s", lambda r: "%.0f" % r["tokens_per_s"])
    row("peak RSS (MiB)", lambda r: "%.0f" % r["peak_rss_mib"])
    row("trainable parameters", lambda r: "%d (%.0f %%)" % (
        r["saves"][0]["trainable"],
        100.0 * r["saves"][0]["trainable"] / r["total_parameters"]))
    row("AdamW state elements at the end", lambda r: "%d" %
        r["optimizer_state_elements"])
    row("churn (modules changed per checkpoint)", lambda r: ",".join(
        str(s["churn"]) for s in r["saves"][1:-1]
        if s["churn"] is not None) or "0")
    table = "\n".join(rows)
    print(table)
    if a.md:
        with open(a.md, "w") as f:
            f.write(table + "\n")
    if a.png:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("# python3-matplotlib missing: no plot")
            return
        fig, ax = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
        for m in MODES:
            xs = [s["step"] - s0 for s in results[m]["saves"]]
            ax[0].plot(xs, [s["eval_loss"] for s in results[m]["saves"]],
                       marker=".", label=m)
            ax[1].plot(xs, [s["other_eval_loss"]
                            for s in results[m]["saves"]], marker=".",
                       label=m)
        ax[0].set_title("held-out licenses (fine-tuning domain)",
                        fontsize=9)
        ax[1].set_title("held-out man pages (base domain)", fontsize=9)
        for x in ax:
            x.set_xlabel("fine-tuning step")
            x.set_ylabel("eval loss (nats/byte)")
            x.grid(alpha=0.3)
        ax[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.png)
        print("# plot: %s" % a.png)


if __name__ == "__main__":
    main()
