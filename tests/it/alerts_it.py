#!/usr/bin/python3
"""Integration tests of alerts (issue 15, docs/alerts.md) against the real
daemon: a checkpoint with NaN weights (nonfinite), one matrix scaled 4x
(snr_jump), a run whose checkpoints stop coming (stalled, and the gauge
back to 0 when one comes), selections changing at most checkpoints
(churn); GET /alerts, the `alert` events of /events, the /metrics
families; alerts kept across a restart and never raised twice, by a
restart or a rescan. Prints TAP.

Standard library only. Usage: alerts_it.py BUILDDIR
"""
import array
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SPD = os.path.join(BUILD, "spectrumd")
FIX = os.path.join(BUILD, "tests", "spectrumd-fixture")
NAN_MOD = "model.layers.1.self_attn.q_proj"
JUMP_MOD = "model.layers.2.mlp.down_proj"
FLAGS = ("--alert-stall-factor", "1.5", "--alert-churn-window", "3",
         "--alert-churn-min", "2", "--top-percent", "50")


def fixture(path, step, seed=1, extra=()):
    subprocess.run([FIX, "checkpoint", path, "--layers", "4", "--hidden",
                    "32", "--intermediate", "64", "--vocab", "64", "--dtype",
                    "F32", "--seed", str(seed), "--step", str(step), "-q",
                    *extra], check=True)


def scale_tensor(ckpt, name, factor):
    """Multiplies one F32 tensor of ckpt/model.safetensors in place."""
    path = os.path.join(ckpt, "model.safetensors")
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        a, b = hdr[name]["data_offsets"]
        f.seek(8 + n + a)
        v = array.array("f")
        v.frombytes(f.read(b - a))
        v = array.array("f", (x * factor for x in v))
        f.seek(8 + n + a)
        f.write(v.tobytes())


def arrive(tmp, run, step, mtime, **kw):
    """Writes checkpoint-<step> aside, dates its files, moves it in."""
    stage = os.path.join(tmp, "stage-%d" % step)
    fixture(stage, step, **kw.get("fix", {}))
    if "scale" in kw:
        scale_tensor(stage, kw["scale"] + ".weight", 4.0)
    if "max_steps" in kw:           # as the HF Trainer writes it
        path = os.path.join(stage, "trainer_state.json")
        with open(path) as f:
            state = json.load(f)
        state["max_steps"] = kw["max_steps"]
        with open(path, "w") as f:
            json.dump(state, f)
    for f in os.listdir(stage):
        os.utime(os.path.join(stage, f), (mtime, mtime))
    os.rename(stage, os.path.join(run, "checkpoint-%d" % step))


def done(d, run, step):
    st, v, _ = d.json("/checkpoints?run=" + run)
    return st == 200 and any(c["step"] == step and c["status"] == "done"
                             for c in v)


def alerts(d, query=""):
    st, v, _ = d.json("/alerts" + query)
    return v["alerts"] if st == 200 else None


def metric(d, name):
    """The value of one /metrics sample line starting with name, or None."""
    _, _, body = d.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


class Events(threading.Thread):
    """Collects the data of the `alert` events of one /events stream."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.got, self.up = d, [], threading.Event()

    def run(self):
        try:
            with urllib.request.urlopen(self.d.url("/events"),
                                        timeout=120) as r:
                self.up.set()
                kind = None
                for line in r:
                    line = line.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "alert":
                        self.got.append(json.loads(line[6:]))
        except OSError:
            pass
        self.up.set()


def churn_expected(d, steps, window=3, least=2):
    """The steps where the churn rule fires, from /selection/diff."""
    flags = [False]
    for a, b in zip(steps, steps[1:]):
        st, v, _ = d.json("/selection/diff?run=demo&from=%d&to=%d" % (a, b))
        flags.append(st == 200 and bool(v.get("added") or v.get("removed")))
    holds = [sum(flags[max(0, i - window + 1):i + 1]) >= least
             for i in range(len(flags))]
    return [steps[i] for i in range(len(steps))
            if holds[i] and not (i > 0 and holds[i - 1])], flags


def phase_stall(tmp, d, srun):
    now = time.time()
    for i, step in enumerate((100, 200, 300)):
        arrive(tmp, srun, step, now - 400 + 100 * i)
    ok(wait_for(lambda: [a for a in alerts(d, "?run=stall") or []
                         if a["kind"] == "stalled"], 30),
       "a run 200 s past its last checkpoint, usually 100 s apart: stalled")
    st = [a for a in alerts(d, "?run=stall") if a["kind"] == "stalled"]
    ok(len(st) == 1 and st[0]["step"] == 300 and
       st[0]["severity"] == "warning" and 199 < st[0]["value"] < 260 and
       abs(st[0]["threshold"] - 150) < 1e-6 and st[0]["count"] == 3 and
       st[0]["modules"] == [],
       "one stalled alert at the last step, value = seconds since, "
       "threshold = 1.5 x 100 s: %s" % st)
    ok(metric(d, 'spectrumd_run_stalled{run="stall"}') == 1,
       "spectrumd_run_stalled 1")
    time.sleep(6)       # past the next stall check (every 5 s at most)
    ok(len([a for a in alerts(d, "?run=stall") if a["kind"] == "stalled"])
       == 1, "still one stalled alert after another check")
    arrive(tmp, srun, 400, time.time())
    ok(wait_for(lambda: metric(d, 'spectrumd_run_stalled{run="stall"}')
                == 0, 15), "a new checkpoint: spectrumd_run_stalled 0")
    # run "ended": as overdue as "stall", but its last checkpoint is the
    # Trainer's last save (global_step = max_steps)
    ok(alerts(d, "?run=ended") == [] and
       metric(d, 'spectrumd_run_stalled{run="ended"}') == 0 and
       "run ended: training ended at step 300" in open(d.log_path).read(),
       "a run whose last checkpoint ends training (global_step >= "
       "max_steps) does not stall")


def phase_demo(tmp, d, run):
    base = time.time() + 1000     # future times: this run never stalls
    arrive(tmp, run, 100, base + 100)
    ok(wait_for(lambda: done(d, "demo", 100), 60), "step 100 analysed")
    arrive(tmp, run, 200, base + 200, fix={"extra": ("--nan-tensor",
                                                      NAN_MOD + ".weight")})
    ok(wait_for(lambda: done(d, "demo", 200), 60),
       "step 200 (NaN weights in one matrix) analysed")
    arrive(tmp, run, 300, base + 300, scale=JUMP_MOD)
    ok(wait_for(lambda: done(d, "demo", 300), 60),
       "step 300 (one matrix x4) analysed")
    # Selections: changed at 200 (a NaN matrix is never selected), 300,
    # 400 and 500 (new noise), not at 600 and 700 (the same bytes as
    # 500), again at 800 and 900.
    for i, seed in enumerate((2, 3, 3, 3, 4, 5)):
        step = 400 + 100 * i
        arrive(tmp, run, step, base + step, fix={"seed": seed})
        ok(wait_for(lambda: done(d, "demo", step), 60),
           "step %d (seed %d) analysed" % (step, seed))
    got = alerts(d, "?run=demo") or []
    nf = [a for a in got if a["kind"] == "nonfinite"]
    ok(len(nf) == 1 and nf[0]["step"] == 200 and
       nf[0]["severity"] == "critical" and nf[0]["value"] == 1 and
       nf[0]["count"] == 1 and nf[0]["modules"] == [NAN_MOD],
       "nonfinite: one critical alert at step 200 naming %s: %s"
       % (NAN_MOD, nf))
    jump = [a for a in got if a["kind"] == "snr_jump" and a["step"] == 300]
    ok(len(jump) == 1 and jump[0]["modules"] == [JUMP_MOD] and
       jump[0]["count"] == 1 and abs(jump[0]["value"] - 4) < 1e-3 and
       jump[0]["threshold"] == 2 and "since step 200" in jump[0]["message"],
       "snr_jump at step 300: only the scaled matrix, ratio 4: %s" % jump)
    ok(not [a for a in got if a["kind"] == "alpha_jump" and
            a["step"] == 300], "no alpha jump for a scaled matrix (alpha "
       "is scale-free)")
    steps = list(range(100, 1000, 100))
    want, flags = churn_expected(d, steps)
    churn = sorted(a["step"] for a in got if a["kind"] == "churn")
    ok(len(want) >= 2 and churn == want,
       "churn alerts where 2 of the last 3 selections changed, once per "
       "episode: %s (flags %s, want %s)" % (churn, flags, want))
    return got


def phase_backfill(tmp, d, run, every):
    """Two checkpoints that came while the daemon was down, analysed
    newest first: 1100 (the bytes of 900) against 900 first, then 1000
    (one matrix x4) against 900, and 1100 again against 1000."""
    newest = every[0]["id"]
    ok(wait_for(lambda: done(d, "demo", 1000) and done(d, "demo", 1100),
                90), "steps 1000 and 1100 analysed after the restart")
    st, v, _ = d.json("/checkpoints?run=demo")
    fin = {c["step"]: c["finished"] for c in v} if st == 200 else {}
    ok(fin.get(1100, 0) < fin.get(1000, 0), "newest first: 1100 before "
       "1000")
    got = alerts(d, "?run=demo") or []
    ok([a for a in alerts(d) if a["id"] <= newest] == every,
       "the alerts from before the restart, unchanged")
    jump = sorted((a["step"], a["message"].split(" since ")[1][:9],
                   a["modules"]) for a in got if a["kind"] == "snr_jump"
                  and a["step"] >= 1000)
    ok(jump == [(1000, "step 900 ", [JUMP_MOD]),
                (1100, "step 1000", [JUMP_MOD])],
       "snr_jump at 1000 against 900, and at 1100 against its new "
       "predecessor 1000: %s" % jump)


def main():
    tmp = tempfile.mkdtemp(prefix="spd-alerts-")
    run, srun = os.path.join(tmp, "run"), os.path.join(tmp, "stall")
    os.makedirs(run)
    os.makedirs(srun)
    erun = os.path.join(tmp, "ended")
    os.makedirs(erun)
    now = time.time()
    for i, step in enumerate((100, 200, 300)):
        arrive(tmp, erun, step, now - 400 + 100 * i,
               **({"max_steps": 300} if step == 300 else {}))
    extra = ("--watch", "stall=" + srun, "--watch", "ended=" + erun, *FLAGS)
    d = spdtest.Daemon(SPD, tmp, run, extra)
    try:
        if not ok(d.port is not None, "daemon starts"):
            return
        ev = Events(d)
        ev.start()
        ev.up.wait(10)
        phase_stall(tmp, d, srun)
        got = phase_demo(tmp, d, run)
        every = alerts(d) or []
        ok(len(every) == len(got) + len(alerts(d, "?run=stall")) and
           [a["id"] for a in every] == sorted((a["id"] for a in every),
                                              reverse=True),
           "GET /alerts without a run: both runs, newest first")
        ok(wait_for(lambda: len(ev.got) == len(every), 10) and
           sorted(ev.got, key=lambda a: a["id"]) ==
           sorted(every, key=lambda a: a["id"]),
           "one `alert` event per alert, the same object as GET /alerts "
           "(%d events)" % len(ev.got))
        newest = every[0]["id"]
        ok(alerts(d, "?since=%d" % newest) == [] and
           len(alerts(d, "?limit=2")) == 2 and
           alerts(d, "?since=%d" % (newest - 1)) == every[:1],
           "since and limit")
        for q, code in (("?since=-1", 400), ("?limit=0", 400),
                        ("?limit=1001", 400), ("?since=abc", 400),
                        ("?run=nosuch", 404)):
            st, v, _ = d.json("/alerts" + q)
            ok(st == code and "error" in v and "code" in v["error"],
               "GET /alerts%s: %d with a JSON error" % (q, code))
        counts = {}
        for a in every:
            key = (a["run"], a["kind"])
            counts[key] = counts.get(key, 0) + 1
        ok(all(metric(d, 'spectrumd_alerts_total{run="%s",kind="%s"}' % k)
               == n for k, n in counts.items()),
           "spectrumd_alerts_total by run and kind: %s" % counts)
        promtool = shutil.which("promtool")
        if promtool is None:
            ok(True, "# SKIP promtool missing (Debian package prometheus)")
        else:
            _, _, body = d.get("/metrics")
            r = subprocess.run([promtool, "check", "metrics"], input=body,
                               capture_output=True)
            out = (r.stdout + r.stderr).decode(errors="replace").strip()
            ok(r.returncode == 0 and out == "" and
               b"spectrumd_alerts_total{" in body,
               "promtool check metrics with alert samples: exit %d %s"
               % (r.returncode, out[:300]))
        log = open(d.log_path).read()
        ok("run demo: step 200: alert nonfinite:" in log and
           "run stall: step 300: alert stalled:" in log,
           "alerts are logged with their run and step")
        ok(d.stop() == 0, "clean stop")

        ev.join(5)
        base = time.time() + 1000
        arrive(tmp, run, 1000, base + 1000, fix={"seed": 5},
               scale=JUMP_MOD)
        arrive(tmp, run, 1100, base + 1100, fix={"seed": 5})
        d = spdtest.Daemon(SPD, tmp, run, extra)
        ok(d.port is not None and wait_for(lambda: d.obj("/ready"), 30),
           "restarted on the same database")
        phase_backfill(tmp, d, run, every)
        before = alerts(d)
        st, _, _ = d.get("/rescan", method="POST")
        time.sleep(3)
        ok(st == 202 and alerts(d) == before,
           "a rescan (checkpoints looked at again) adds none")
        ok(metric(d, 'spectrumd_run_stalled{run="stall"}') == 0 and
           metric(d, 'spectrumd_alerts_total{run="demo",kind="nonfinite"}')
           == 1, "/metrics after the restart")
        ok(d.stop() == 0, "clean stop")
    finally:
        if d.p.poll() is None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


main()
spdtest.finish()
