#!/usr/bin/python3
"""Integration test of the closed loop (examples/train_loop.py) with the
real spectrumd: a tiny Llama-style model is trained briefly on one domain,
then fine-tuned on another in dynamic mode while the daemon watches the
run; at every save the loop applies /selection. Checks, from the files the
run wrote and the daemon's answers:
  - each checkpoint is analysed ("done") and the loop's trainable set after
    each save is exactly the /selection of that step (its parameters, as
    the daemon's /snr ranking per type gives them);
  - the parameters the loop froze over an interval are byte-identical
    between the checkpoints that bound it, and the ones it trained changed;
  - spectrum_optim keeps AdamW state for staying parameters and drops it
    for frozen ones;
  - with --lr-scales daemon, after each save every trained parameter sits
    in a param group whose lr_scale is the daemon's /lr_scales multiplier
    of that selection version (recomputed here from /snr by the rule of
    the README: linear from lr_scale_max at a type's top to 1 at its
    cut-off).
Needs torch (skips with 77 without). Prints TAP.

Usage: loop_it.py BUILDDIR [SRCDIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SRC = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("top_srcdir", ".")
SPD = os.path.join(BUILD, "spectrumd")
EXAMPLES = os.path.join(SRC, "examples")
try:
    import torch
except ImportError:
    print("1..0 # SKIP torch missing")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, EXAMPLES)
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402
import spectrum_client as scl  # noqa: E402
import spectrum_optim as sopt  # noqa: E402
import train_loop as tl  # noqa: E402

TINY = ["--layers", "8", "--hidden", "32", "--intermediate", "64",
        "--heads", "2", "--seq", "32", "--batch", "4", "--threads", "1"]


def loop(*args):
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES,
                                                      "train_loop.py"),
                        *args, *TINY], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
    return p.returncode


def top_set(snr, percent=25):
    """The per-type top floor(n*p/100) modules by SNR (ties by layer),
    plus embeddings and lm_head: the selection rule of DESIGN.md 2."""
    by = {}
    out = []
    for m in snr["matrices"]:
        if m["type"] in ("model.embed_tokens", "lm_head"):
            out.append(m["name"])
            continue
        by.setdefault(m["type"], []).append(m)
    for ms in by.values():
        ms.sort(key=lambda m: (-m["snr"], m.get("layer", 0)))
        out += [m["name"] for m in ms[:len(ms) * percent // 100]]
    return set(out)


def expected_scales(snr, top_max=2.0, percent=25):
    """{parameter name: multiplier != 1} by the /lr_scales rule from the
    per-type SNR ranking (no stickiness)."""
    by = {}
    for m in snr["matrices"]:
        if m["type"] not in ("model.embed_tokens", "lm_head"):
            by.setdefault(m["type"], []).append(m)
    out = {}
    for ms in by.values():
        ms.sort(key=lambda m: (-m["snr"], m.get("layer", 0)))
        nsel = len(ms) * percent // 100
        for i, m in enumerate(ms[:nsel]):
            x = top_max if nsel == 1 else \
                top_max - (top_max - 1.0) * i / (nsel - 1)
            if x != 1.0:
                out[m["name"]] = x
    return out


def test_optim():
    """OptimizerSync on a real AdamW: state kept, dropped, fresh."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    opt = torch.optim.AdamW([{"params": [p for p in m.parameters()
                                         if p.ndim == 2],
                              "weight_decay": 0.1},
                             {"params": [p for p in m.parameters()
                                         if p.ndim < 2],
                              "weight_decay": 0.0}], lr=0.01)
    sync = sopt.OptimizerSync(opt)
    names = [n for n, _ in m.named_parameters()]
    rep = sync.apply(m, ["0.weight", "0.bias"])
    ok(rep["newly_frozen"] == ["1.weight", "1.bias"] and
       sync.trainable_names(m) == ["0.weight", "0.bias"] and
       not m[1].weight.requires_grad, "frozen parameters leave AdamW")
    m(torch.randn(3, 4)).sum().backward()
    opt.step()
    st = opt.state[m[0].weight]["exp_avg"]
    w1 = m[1].weight.detach().clone()
    rep = sync.apply(m, ["0.weight", "1.weight"])
    ok(opt.state[m[0].weight]["exp_avg"] is st and
       m[0].bias not in opt.state and m[1].weight not in opt.state and
       any(p is m[1].weight for p in opt.param_groups[0]["params"]) and
       rep["kept"] == ["0.weight"],
       "staying state kept, frozen state dropped, unfrozen joins its group")
    opt.zero_grad(set_to_none=True)
    m(torch.randn(3, 4)).sum().backward()
    b0 = m[0].bias.detach().clone()
    opt.step()
    ok(not torch.equal(w1, m[1].weight) and torch.equal(b0, m[0].bias) and
       int(opt.state[m[1].weight]["step"]) == 1,
       "the unfrozen parameter is updated with fresh state; frozen is not")
    rep = sync.apply(m, names, lr_scales={"1.weight": 2.0})
    g = [g for g in opt.param_groups if g.get("lr_scale") == 2.0]
    ok(len(g) == 1 and g[0]["params"] == [m[1].weight] and
       abs(g[0]["lr"] - 0.02) < 1e-12 and rep["moved"] == ["1.weight"] and
       opt.state[m[1].weight]["exp_avg"] is not None,
       "lr_scales: a scaled parameter moves to its own group, state kept")


def test_loop(tmp):
    base = os.path.join(tmp, "base")
    run = os.path.join(tmp, "ft")
    os.makedirs(run)
    ok(loop("base", "--out", base, "--steps", "6", "--save-every", "6") == 0,
       "base model trained")
    d = spdtest.Daemon(SPD, tmp, run)
    try:
        ok(d.port is not None, "daemon up")
        res_path = os.path.join(tmp, "res.json")
        rc = loop("finetune", "--init", os.path.join(base, "checkpoint-6"),
                  "--out", run, "--mode", "dynamic", "--daemon", d.base,
                  "--run", "demo", "--steps", "12", "--save-every", "3",
                  "--warmup", "2", "--lr", "0.01", "--lr-scales", "daemon",
                  "--result", res_path)
        ok(rc == 0, "dynamic fine-tuning ran")
        res = json.load(open(res_path))
        saves = res["saves"]
        steps = [s["step"] for s in saves]
        ok(steps == [6, 9, 12, 15, 18], "saves at %s" % steps)
        ok(wait_for(lambda: all(
            any(c["step"] == s and c["status"] == "done"
                for c in d.obj("/checkpoints?run=demo") or [])
            for s in steps), 30), "every checkpoint analysed")
        allnames = None
        for s in saves[:-1]:
            sel = s["selection"]
            snr = d.obj("/snr?run=demo&step=%d" % s["step"])
            if allnames is None:
                allnames = [m["name"] for m in snr["matrices"]]
                allnames += [n for n, _ in tl.LlamaForCausalLM(
                    tl.config(argparse.Namespace(
                        hidden=32, intermediate=64, layers=8, heads=2,
                        seq=32, dtype="float32"))).named_parameters()
                    if n not in allnames]
            ok(sel is not None and sel["step"] == s["step"] and
               sorted(s["applied"]) == sorted(
                   scl.apply(allnames, sel)) and
               set(s["applied"]) == set(sel["parameters"]),
               "step %d: trainable set == /selection v%s (%d params)" %
               (s["step"], sel and sel["version"], len(s["applied"])))
            ok(set(s["applied"]) == top_set(snr),
               "step %d: == the per-type top 25 %% of /snr" % s["step"])
            want = expected_scales(snr)
            ok(s["lr_scales_version"] == sel["version"] and
               len(want) == 7 and s["lr_scales"] == want,
               "step %d: param groups carry /lr_scales v%s (%d x2.0)" %
               (s["step"], s["lr_scales_version"],
                sum(1 for x in s["lr_scales"].values() if x == 2.0)))
        last = d.obj("/selection?run=demo")
        ok(last is not None and last["step"] == 18 and
           last["version"] >= saves[-2]["selection"]["version"],
           "the daemon's final selection follows the last save")
        vers = [s["selection"]["version"] for s in saves[:-1]]
        sets = [frozenset(s["applied"]) for s in saves[:-1]]
        ok(all((vers[i + 1] != vers[i]) == (sets[i + 1] != sets[i])
               for i in range(len(vers) - 1)),
           "version changes exactly when the set changes (%s)" % vers)
        # Frozen parameters byte-identical across each interval.
        for a, b in zip(saves, saves[1:]):
            wa = tl.load_safetensors(os.path.join(
                run, "checkpoint-%d" % a["step"], "model.safetensors"))
            wb = tl.load_safetensors(os.path.join(
                run, "checkpoint-%d" % b["step"], "model.safetensors"))
            trained = set(b["trained"])
            frozen = [n for n in wa if n not in trained]
            same = [n for n in frozen if torch.equal(
                wa[n].view(torch.uint8), wb[n].view(torch.uint8))]
            moved = [n for n in trained if not torch.equal(wa[n], wb[n])]
            ok(trained == set(a["applied"]) and len(frozen) > 0 and
               same == frozen and sorted(moved) == sorted(trained),
               "steps %d-%d: %d frozen byte-identical, %d trained changed" %
               (a["step"], b["step"], len(same), len(moved)))
        test_callback(d)
    finally:
        ok(d.stop() == 0, "daemon exits cleanly")


def test_callback(d):
    """hf_callback.SpectrumCallback with a real AdamW: the set it applies
    is what the optimizer holds, also when the model was partly frozen
    when the optimizer was built (the case its docstring warned about)."""
    import logging
    import hf_callback as hfc
    cfg = tl.config(argparse.Namespace(hidden=32, intermediate=64, layers=8,
                                       heads=2, seq=32, dtype="float32"))
    model = tl.LlamaForCausalLM(cfg)
    pre = tl.random_set(model, 25, seed=7)
    for n, p in model.named_parameters():
        p.requires_grad_(n in pre)
    opt = torch.optim.AdamW([{"params": [p for p in model.parameters()
                                         if p.requires_grad and p.ndim >= 2],
                              "weight_decay": 0.01},
                             {"params": [p for p in model.parameters()
                                         if p.requires_grad and p.ndim < 2],
                              "weight_decay": 0.0}], lr=0.01)
    x = torch.randint(0, 256, (2, 16))
    model(x).sum().backward()
    opt.step()
    kept = opt.state[model.lm_head.weight]["exp_avg"]
    cb = hfc.SpectrumCallback(scl.SpectrumClient(d.base, run="demo"),
                              logger=logging.getLogger("t"))
    cb.on_train_begin(None, None, None, model=model, optimizer=opt)
    sel = cb.client.current
    held = [n for n, p in model.named_parameters()
            if any(p is q for g in opt.param_groups for q in g["params"])]
    rep = cb.report
    ok(sel is not None and set(held) == set(sel["parameters"]) and
       rep["not_in_optimizer"] == [] and rep["optimizer_synced"] and
       len(opt.param_groups) == 2 and len(rep["newly_unfrozen"]) > 0,
       "callback: the optimizer holds exactly /selection (+%d joined, "
       "-%d left)" % (len(rep["newly_unfrozen"]), len(rep["newly_frozen"])))
    ok(opt.state[model.lm_head.weight]["exp_avg"] is kept and
       "lm_head.weight" in rep["kept"] and
       all(p not in opt.state for n, p in model.named_parameters()
           if n not in sel["parameters"]),
       "callback: staying state kept, frozen state dropped")
    new = dict(model.named_parameters())[rep["newly_unfrozen"][0]]
    before = new.detach().clone()
    opt.zero_grad(set_to_none=True)
    model(x).sum().backward()
    opt.step()
    ok(not torch.equal(before, new),
       "callback: a newly unfrozen parameter is updated")
    cb2 = hfc.SpectrumCallback(scl.SpectrumClient(d.base, run="demo"),
                               logger=logging.getLogger("t"),
                               sync_optimizer=False)
    m2 = tl.LlamaForCausalLM(cfg)
    for n, p in m2.named_parameters():
        p.requires_grad_(n in pre)
    o2 = torch.optim.AdamW([p for p in m2.parameters() if p.requires_grad])
    cb2.on_train_begin(None, None, None, model=m2, optimizer=o2)
    ok(sorted(cb2.report["not_in_optimizer"]) ==
       sorted(set(sel["parameters"]) - set(pre)) and
       not cb2.report["optimizer_synced"],
       "sync_optimizer=False: the missing parameters are reported")


def main():
    import logging
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="spd-loop-it.") as tmp:
        try:
            test_optim()
            test_loop(tmp)
        except Exception as e:      # a crash is a failure
            import traceback
            traceback.print_exc()
            ok(False, "no exception (%s)" % e)
    spdtest.finish()


if __name__ == "__main__":
    main()
