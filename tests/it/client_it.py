#!/usr/bin/python3
"""Integration tests of the example client (examples/spectrum_client.py)
and the Trainer callback logic (examples/hf_callback.py) against the real
spectrumd on a loopback port with a temporary database, fed by
tests/spectrumd-fixture. No torch or transformers: the model and optimizer
are fakes, and so is the Trainer whose log() carries the callback's
spectrum/* metrics to a recording reporting callback, in the order
transformers' Trainer and CallbackHandler use (reporting callbacks before
the user's); the logged values are checked against /selection and /snr.
Prints TAP.

Standard library only. Usage: client_it.py BUILDDIR [SRCDIR]
"""
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SRC = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("top_srcdir", ".")
SPD = os.path.join(BUILD, "spectrumd")
FIX = os.path.join(BUILD, "tests", "spectrumd-fixture")
EXAMPLES = os.path.join(SRC, "examples")
sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, EXAMPLES)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402
import spectrum_client as scl  # noqa: E402
import hf_callback as hfc  # noqa: E402

LAYERS = 12


def fixture(path, step, seed=1, extra=()):
    subprocess.run([FIX, "checkpoint", path, "--layers", str(LAYERS),
                    "--hidden", "48", "--intermediate", "96", "--vocab", "128",
                    "--shards", "2", "--step", str(step), "--seed", str(seed),
                    "-q", *extra], check=True)


def Daemon(tmp, run_dir):
    return spdtest.Daemon(SPD, tmp, run_dir)


def done(d, step):
    v = d.obj("/checkpoints")
    return v is not None and any(c["step"] == step and c["status"] == "done"
                                 for c in v)


class CountingClient(scl.SpectrumClient):
    """A client that counts its requests."""
    calls = 0

    def selection(self, wait=0):
        self.calls += 1
        return super().selection(wait)


class FakeParam:
    def __init__(self, n):
        self.requires_grad = True
        self.n = n

    def numel(self):
        return self.n


class FakeModel:
    def __init__(self, names):
        self.params = [(n, FakeParam(10 + i)) for i, n in enumerate(names)]

    def named_parameters(self):
        return iter(self.params)


class FakeOptimizer:
    def __init__(self, params):
        self.param_groups = [{"params": list(params), "lr": 1e-5}]


class MiniState:
    def __init__(self):
        self.global_step = 0
        self.epoch = None
        self.log_history = []
        self.is_world_process_zero = True


class MiniControl:
    should_log = False


class MiniHandler:
    """transformers' CallbackHandler as far as these tests need: each
    event calls every callback in list order with model= and optimizer=,
    on_log with logs=."""

    def __init__(self, callbacks, model, optimizer):
        self.callbacks = list(callbacks)
        self.model = model
        self.optimizer = optimizer

    def call_event(self, event, args, state, control, **kw):
        for cb in self.callbacks:
            r = getattr(cb, event)(args, state, control, model=self.model,
                                   optimizer=self.optimizer, **kw)
            if r is not None:
                control = r
        return control

    def on_log(self, args, state, control, logs):
        control.should_log = False
        return self.call_event("on_log", args, state, control, logs=logs)


class MiniTrainer:
    """The parts of transformers.Trainer the tracker logging goes through:
    reporting callbacks first, then the user's (Trainer.__init__ builds
    DEFAULT_CALLBACKS + get_reporting_integration_callbacks(report_to) +
    callbacks), and log() as Trainer.log: epoch added, {**logs, "step"}
    appended to state.log_history, then on_log of every callback."""

    def __init__(self, model, reporting, user, optimizer=None):
        self.args, self.state, self.control = None, MiniState(), \
            MiniControl()
        self.handler = MiniHandler(list(reporting) + list(user), model,
                                   optimizer)

    def log(self, logs, start_time=None):
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        self.state.log_history.append(dict(logs, step=self.state.global_step))
        self.control = self.handler.on_log(self.args, self.state,
                                           self.control, logs)

    def event(self, name):
        self.control = self.handler.call_event(name, self.args, self.state,
                                               self.control)


class Recorder:
    """A reporting integration (TensorBoardCallback-like): writes every
    numeric value of each on_log at state.global_step."""

    def __init__(self):
        self.points = []

    def __getattr__(self, name):    # every other event: nothing
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_log(self, args, state, control, logs=None, **kw):
        self.points.append((state.global_step, {
            k: v for k, v in logs.items() if isinstance(v, (int, float))}))


def expected_metrics(d, sel, prev, names, model_elems):
    """The spectrum/* values the callback must log for sel, from the
    daemon's /selection and /snr answers (not from the callback)."""
    snr = d.obj("/snr?run=demo&step=%d" % sel["step"])
    chosen = set(sel["parameters"])
    a = [m["snr"] for m in snr["matrices"]
         if m["name"] in chosen and m["snr"] is not None]
    b = [m["snr"] for m in snr["matrices"]
         if m["name"] not in chosen and m["snr"] is not None]
    want = scl.apply(names, sel)
    el = sum(model_elems[n] for n in want)
    m = {"spectrum/version": sel["version"],
         "spectrum/selection_step": sel["step"],
         "spectrum/selected_matrices": len(sel["parameters"]),
         "spectrum/unfrozen_tensors": len(want),
         "spectrum/unfrozen_elements": el,
         "spectrum/unfrozen_fraction": el / sum(model_elems.values()),
         "spectrum/snr_median_selected": statistics.median(a),
         "spectrum/snr_median_frozen": statistics.median(b)}
    if prev is not None:
        m["spectrum/churn"] = len(set(sel["modules"]) ^ set(prev["modules"]))
    return m


def logged_as(rec, i, step, want):
    """True when the i-th point rec wrote is at step and its spectrum/*
    values are want's (and it wrote i + 1 points)."""
    if len(rec.points) != i + 1 or rec.points[i][0] != step:
        return False
    got = {k: v for k, v in rec.points[i][1].items()
           if k.startswith("spectrum/")}
    return set(got) == set(want) and all(
        abs(got[k] - want[k]) <= 1e-9 * max(1.0, abs(want[k]))
        for k in want)


def trainable(model):
    return [n for n, p in model.named_parameters() if p.requires_grad]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_matches():
    m = scl.matches
    ok(m("model.layers.1.mlp.down_proj.weight",
         ["model.layers.1.mlp.down_proj"]) and
       m("model.layers.1.mlp.down_proj.bias", "model.layers.1.mlp.down_proj"),
       "a bare module name matches its .weight and its .bias")
    ok(not m("model.layers.10.mlp.down_proj.weight",
             "model.layers.1.mlp.down_proj") and
       not m("model.layers.10.mlp.down_proj.weight", "model.layers.1.") and
       m("model.layers.1.mlp.down_proj.weight", "model.layers.1."),
       "model.layers.1. does not match model.layers.10.")
    ok(m("lm_head.weight", "^lm_head.weight$") and
       not m("lm_head.weight2", "^lm_head.weight$") and
       not m("lm_head.bias", "^lm_head.weight$"),
       "anchored ^lm_head.weight$ matches only lm_head.weight")
    ok(not m("lm_headXweight", "^lm_head.weight$") and
       not m("model_layers_1_mlp", "model.layers.1.mlp"),
       "a '.' not followed by '+' is literal")
    ok(not m("model.layers.1.mlp.down_proj.weight", "layers.1.mlp") and
       m("model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp"),
       "re.match semantics: prefix, not search")
    ok(m("model.layers.3.self_attn.q_proj.weight", "model.layers.3.+.q_proj")
       and not m("model.layers.3.q_proj.weight", "model.layers.3.+.q_proj"),
       "'.+' stays a wildcard")
    ok(m("layers.21.block_sparse_moe.gate.weight",
         "layers.2[0-9]+.block_sparse_moe.gate.[a-z]+$") and
       not m("layers.31.block_sparse_moe.gate.weight",
             "layers.2[0-9]+.block_sparse_moe.gate.[a-z]+$"),
       "Axolotl's documented example pattern")
    ok(m("model.embed_tokens.weight", "^model.embed_tokens.weight$[:32000]")
       and scl.parse_pattern("^a.weight$[:32000]")[1] == (0, 32000) and
       scl.parse_pattern("a[5]")[1] == (5, 6) and
       scl.parse_pattern("a[3:]")[1] == (3, None) and
       scl.parse_pattern("a.b")[1] is None,
       "[a:b] row-range suffix is stripped for matching and parsed")
    try:
        scl.parse_pattern("a[5:2]")
        bad = False
    except ValueError:
        bad = True
    ok(bad, "a range whose end is not after its start is refused")
    ok(not m("a.weight", r"^a\.weight$") and not m("a.weight", []),
       "pre-escaped dots (format=regex) match nothing, as in Axolotl")
    ok(scl.apply([("x.weight", 1), ("y.weight", 2), ("x.bias", 3)],
                 ["x"]) == ["x.weight", "x.bias"] and
       scl.apply(["x.weight", "y.weight"], {"patterns": ["^y.weight$"]}) ==
       ["y.weight"],
       "apply takes names or (name, param) pairs, a dict or a pattern list")


def test_daemon(tmp):
    run = os.path.join(tmp, "run")
    os.makedirs(run)
    d = Daemon(tmp, run)
    if not ok(d.port is not None, "daemon starts and logs its port"):
        print(open(d.log_path).read())
        return
    try:
        with_daemon(tmp, run, d)
    finally:
        code = d.stop()
        ok(code == 0, "daemon exits 0 on SIGTERM (%s)" % code)


def with_daemon(tmp, run, d):
    c = scl.SpectrumClient(d.base, run="demo")
    ok(wait_for(lambda: d.obj("/health") is not None, 10), "/health answers")
    ok(c.selection() is None and c.current is None and c.etag is None,
       "no checkpoint yet: selection() is None, nothing current")
    cbc = CountingClient(d.base)
    cb = hfc.SpectrumCallback(cbc, logger=logging.getLogger("t"))
    empty = FakeModel(["a.weight", "b.weight"])
    cb.on_train_begin(None, None, None, model=empty)
    ok(trainable(empty) == ["a.weight", "b.weight"] and
       cb.applied_version is None,
       "callback without a selection leaves the model alone")
    for rq, status in ((dict(run="nope"), 404), (dict(top_percent=0), 400)):
        try:
            scl.SpectrumClient(d.base, **rq).selection()
            got = None
        except scl.SpectrumError as e:
            got = e
        ok(got is not None and got.status == status and got.code and
           got.code != "no_selection", "%s -> SpectrumError %d %s" %
           (rq, status, got and got.code))

    fixture(os.path.join(run, "checkpoint-10"), 10, seed=1)
    ok(wait_for(lambda: done(d, 10)), "checkpoint-10 analysed")
    v1 = c.selection()
    ok(v1 is not None and v1["version"] == 1 and v1["step"] == 10 and
       c.current is v1 and c.etag and len(v1["parameters"]) > 0,
       "first selection fetched: v1, step 10, ETag %s" % c.etag)
    ok(c.selection() is None and c.current is v1,
       "second call: None (304 with If-None-Match)")
    t0 = time.time()
    r = c.selection(wait=1)
    dt = time.time() - t0
    ok(r is None and 0.8 < dt < 5,
       "selection(wait=1) long-polls, then None (%.2f s)" % dt)
    try:
        big = scl.SpectrumClient(d.base).selection(wait=100000)
    except scl.SpectrumError as e:
        big = e
    ok(isinstance(big, dict) and big["version"] == 1,
       "a new client's long wait is clamped to the daemon's limit: %s" %
       (big if not isinstance(big, dict) else "v1 at once"))
    c50 = scl.SpectrumClient(d.base, top_percent=50)
    s50 = c50.selection()
    ok(s50 is not None and s50["top_percent"] == 50 and
       len(s50["parameters"]) > len(v1["parameters"]) and c50.etag != c.etag,
       "top_percent=50 and no run: %d > %d parameters" %
       (len(s50["parameters"]) if s50 else -1, len(v1["parameters"])))

    # apply() on a fake model's names: the fixture's tensors (from /snr),
    # plus q/k/v biases and norm weights the analysis does not list.
    snr = d.obj("/snr?run=demo&step=10")
    names = []
    for mtx in snr["matrices"]:
        names.append(mtx["name"])
        if re.search(r"\.(q|k|v)_proj$", mtx["module"]):
            names.append(mtx["module"] + ".bias")
    names += ["model.layers.%d.input_layernorm.weight" % i
              for i in range(LAYERS)] + ["model.norm.weight"]
    want = [n for n in names if n in set(v1["parameters"]) or
            (n.endswith(".bias") and n[:-5] in set(v1["modules"]))]
    got = scl.apply(names, v1)
    nb = sum(1 for n in got if n.endswith(".bias"))
    ok(got == want and set(v1["parameters"]) <= set(got),
       "apply: exactly the %d selected weights + %d biases (of %d names)" %
       (len(v1["parameters"]), nb, len(names)))
    ok(nb > 0 and not any("layernorm" in n or n == "model.norm.weight"
                          for n in got), "apply: biases in, norms out")

    # The callback on a fully trainable model: its optimizer holds all.
    model = FakeModel(names)
    full_opt = FakeOptimizer(p for _, p in model.named_parameters())
    cb.on_train_begin(None, None, None, model=model, optimizer=full_opt)
    rep = cb.report
    ok(trainable(model) == want and cb.applied_version == 1 and
       rep["unfrozen"] == len(want) and rep["total"] == len(names) and
       rep["not_in_optimizer"] == [] and
       len(rep["newly_frozen"]) == len(names) - len(want),
       "on_train_begin: %d of %d trainable, the rest frozen" %
       (rep["unfrozen"], rep["total"]))
    # The optimizer a Trainer would build now holds only those.
    part_opt = FakeOptimizer(p for _, p in model.named_parameters()
                             if p.requires_grad)

    # Into the tracker: the callback logs through the Trainer's log, so a
    # reporting callback placed before it (as report_to's are) sees the
    # spectrum/* values at the step, and they are in log_history.
    tmodel = FakeModel(names)
    elems = {n: p.numel() for n, p in tmodel.named_parameters()}
    rec = Recorder()
    tcb = hfc.SpectrumCallback(scl.SpectrumClient(d.base, run="demo"),
                               logger=logging.getLogger("t"))
    tr = MiniTrainer(tmodel, [rec], [tcb])
    ok(tcb.bind(tr) is tcb, "bind() returns the callback")
    tr.state.epoch = 0.0
    tr.event("on_train_begin")
    w1 = expected_metrics(d, v1, None, names, elems)
    ok(logged_as(rec, 0, 0, w1) and rec.points[0][1].get("epoch") == 0.0,
       "tracker: v1 logged at step 0 with /selection's and /snr's values "
       "(%d unfrozen, median SNR %.3g vs %.3g)" %
       (w1["spectrum/unfrozen_tensors"], w1["spectrum/snr_median_selected"],
        w1["spectrum/snr_median_frozen"]))
    ok(tr.state.log_history == [dict(rec.points[0][1], step=0)] and
       tcb.metrics == {k: v for k, v in rec.points[0][1].items()
                       if k != "epoch"},
       "tracker: the same entry is in log_history and .metrics")
    tr.state.global_step = 10
    tr.event("on_save")
    ok(len(rec.points) == 1, "tracker: an unchanged version logs nothing")
    # An unchanged version is not re-applied: a flag we flip stays flipped.
    flip = model.params[-1][1]
    flip.requires_grad = True
    calls = cbc.calls
    cb.on_save(None, None, None, model=model, optimizer=part_opt)
    ok(flip.requires_grad and cb.report is rep and cbc.calls == calls + 1,
       "on_save with the same version polls once and re-applies nothing")
    flip.requires_grad = False
    cb.on_step_begin(None, None, None, model=model)
    ok(cbc.calls == calls + 1, "on_step_begin does not poll unless asked")

    # poll_forever sees v1 now and v2 later.
    seen = []
    stop = threading.Event()
    pc = scl.SpectrumClient(d.base, run="demo")
    th = threading.Thread(target=pc.poll_forever, daemon=True,
                          args=(lambda s: seen.append(s["version"]),),
                          kwargs=dict(wait=2, stop=stop))
    th.start()
    ok(wait_for(lambda: seen == [1], 10), "poll_forever delivers v1")

    # A drifted checkpoint changes the set: the long poll wakes with v2.
    writer = threading.Timer(0.5, fixture, args=(
        os.path.join(run, "checkpoint-20"), 20),
        kwargs=dict(seed=1, extra=("--drift", "1.5")))
    writer.start()
    t0 = time.time()
    v2 = c.selection(wait=20)
    dt = time.time() - t0
    writer.join()
    ok(v2 is not None and v2["version"] == 2 and v2["step"] == 20 and
       dt > 0.4 and set(v2["parameters"]) != set(v1["parameters"]),
       "selection(wait=20) returns the new version after %.1f s" % dt)
    ok(wait_for(lambda: seen == [1, 2], 10),
       "poll_forever delivers v2 (%s)" % seen[:8])
    stop.set()
    th.join(10)
    ok(not th.is_alive(), "poll_forever stops on its event")

    want2 = scl.apply(names, v2)
    cb.on_save(None, None, None, model=model, optimizer=part_opt)
    rep2 = cb.report
    new = sorted(set(want2) - set(want))
    ok(trainable(model) == want2 and cb.applied_version == 2 and
       rep2["version"] == 2 and sorted(rep2["newly_unfrozen"]) == new and
       sorted(rep2["newly_frozen"]) == sorted(set(want) - set(want2)),
       "on_save re-applies v2: +%d -%d" % (len(rep2["newly_unfrozen"]),
                                          len(rep2["newly_frozen"])))
    ok(len(new) > 0 and sorted(rep2["not_in_optimizer"]) == new,
       "newly unfrozen parameters are reported missing from the optimizer")
    tr.state.global_step = 20
    tr.state.epoch = 1.5
    tr.event("on_save")
    w2 = expected_metrics(d, v2, v1, names, elems)
    ok(logged_as(rec, 1, 20, w2) and w2["spectrum/churn"] > 0 and
       tr.state.log_history[-1]["step"] == 20,
       "tracker: v2 logged at step 20, churn %d as /selection's modules "
       "differ" % w2["spectrum/churn"])
    nosnr = hfc.SpectrumCallback(scl.SpectrumClient(d.base, run="demo"),
                                 logger=logging.getLogger("t"),
                                 log_snr=False)
    tr2 = MiniTrainer(FakeModel(names), [Recorder()], [nosnr])
    nosnr.bind(tr2)
    tr2.event("on_train_begin")
    ok(tr2.state.log_history and not any(
        "snr" in k for k in tr2.state.log_history[0]) and
       tr2.state.log_history[0]["spectrum/version"] == 2 and
       "spectrum/churn" not in tr2.state.log_history[0],
       "tracker: log_snr=False leaves the SNR medians out")
    cb.on_save(None, None, None, model=model, optimizer=part_opt)
    ok(cb.report is rep2, "a second on_save with v2 changes nothing")
    sb = hfc.SpectrumCallback(CountingClient(d.base),
                              apply_on=("step_begin",), poll_interval_s=3600,
                              logger=logging.getLogger("t"))
    m2 = FakeModel(names)
    sb.on_step_begin(None, None, None, model=m2)
    sb.on_step_begin(None, None, None, model=m2)
    ok(trainable(m2) == want2 and sb.client.calls == 1,
       "on_step_begin (opted in) applies, then waits poll_interval_s")

    # The command line.
    cli = os.path.join(EXAMPLES, "spectrum_client.py")
    p = subprocess.run([sys.executable, cli, d.base, "--run", "demo"],
                       capture_output=True, text=True, timeout=30)
    ok(p.returncode == 0 and p.stdout.split() == v2["parameters"] and
       "version 2" in p.stderr, "CLI prints the unfreeze set")
    p = subprocess.run([sys.executable, cli, d.base, "--format", "yaml"],
                       capture_output=True, text=True, timeout=30)
    ok(p.returncode == 0 and p.stdout.splitlines() ==
       ["unfrozen_parameters:"] + ["- " + x for x in v2["patterns"]],
       "CLI --format yaml")


def test_backoff():
    c = scl.SpectrumClient("http://127.0.0.1:%d" % free_port(), timeout=2)
    delays = []
    stop = threading.Event()

    def on_error(e, delay):
        delays.append(delay)
        if len(delays) == 5:
            stop.set()
    t0 = time.time()
    c.poll_forever(lambda s: None, wait=0, stop=stop, min_backoff=0.01,
                   max_backoff=0.04, on_error=on_error)
    ok(delays == [0.01, 0.02, 0.04, 0.04, 0.04] and time.time() - t0 < 5,
       "connection refused: backoff doubles up to its cap (%s)" % delays)
    p = subprocess.run([sys.executable,
                        os.path.join(EXAMPLES, "spectrum_client.py"),
                        c.base_url], capture_output=True, text=True,
                       timeout=30)
    ok(p.returncode == 1 and "spectrum_client:" in p.stderr,
       "CLI: unreachable daemon -> exit 1 with a message")


def main():
    logging.basicConfig(level=logging.CRITICAL)
    tmp = tempfile.mkdtemp(prefix="spd-client-it.")
    try:
        test_matches()
        test_backoff()
        test_daemon(tmp)
    except Exception as e:      # a crash is a failure, not a silent pass
        import traceback
        traceback.print_exc()
        ok(False, "no exception (%s)" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    spdtest.finish()


if __name__ == "__main__":
    main()
