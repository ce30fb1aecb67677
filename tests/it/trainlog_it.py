#!/usr/bin/python3
"""Integration tests of the training log (issue 15): the daemon stores each
checkpoint's trainer_state.json log_history, deduplicated by step across
the overlapping histories of successive checkpoints, skips malformed
entries with a notice, and serves the series on /history and /train_log.
Prints TAP.

Standard library only. Usage: trainlog_it.py BUILDDIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SPD = os.path.join(BUILD, "spectrumd")
FIX = os.path.join(BUILD, "tests", "spectrumd-fixture")


def fixture(path, step):
    subprocess.run([FIX, "checkpoint", path, "--layers", "2", "--hidden",
                    "32", "--intermediate", "64", "--vocab", "64",
                    "--step", str(step), "-q"], check=True)


def statuses(d):
    st, v, _ = d.json("/checkpoints")
    return {c["step"]: c["status"] for c in v} if st == 200 else {}


def main():
    tmp = tempfile.mkdtemp(prefix="spd-trainlog-")
    run = os.path.join(tmp, "run")
    os.makedirs(run)
    d = spdtest.Daemon(SPD, tmp, run)
    try:
        if not ok(d.port is not None, "daemon starts"):
            return
        fixture(os.path.join(run, "checkpoint-20"), 20)
        ok(wait_for(lambda: statuses(d).get(20) == "done"),
           "checkpoint-20 analysed")
        st, v, _ = d.json("/history?metric=loss")
        pts = v["series"][0]["points"] if st == 200 and v["series"] else []
        ok([p[0] for p in pts] == [5, 10, 15, 20] and
           all(p[1] is None for p in pts),
           "loss after checkpoint-20: steps 5..20 every 5, no wall time")
        first = {p[0]: p[2] for p in pts}

        # checkpoint-40: a resumed run, its history overlaps 5..20 (one
        # value re-logged differently), plus malformed entries.
        stage = os.path.join(tmp, "stage-40")
        fixture(stage, 40)
        ts = os.path.join(stage, "trainer_state.json")
        j = json.load(open(ts))
        for e in j["log_history"]:
            if e.get("step") == 20 and "loss" in e:
                e["loss"] = 9.5
        j["log_history"] += [
            "not an entry", {"loss": 1.0}, {"step": -3, "loss": 1.0},
            {"step": 40.5, "loss": 1.0}, {"step": 45, "loss": "high"},
            {"step": 45, "bad name!": 1.0}, {"step": 45, "x" * 65: 1.0},
            {"step": 45, "grad_norm": None, "loss": 0.7},
        ]
        json.dump(j, open(ts, "w"))
        os.rename(stage, os.path.join(run, "checkpoint-40"))
        ok(wait_for(lambda: statuses(d).get(40) == "done"),
           "checkpoint-40 with malformed entries analysed")
        st, v, _ = d.json("/history?metric=loss")
        pts = v["series"][0]["points"] if st == 200 and v["series"] else []
        steps = [p[0] for p in pts]
        val = {p[0]: p[2] for p in pts}
        ok(steps == list(range(5, 45, 5)) + [45],
           "loss: each step once across overlapping histories (%s)" % steps)
        ok(val.get(20) == 9.5 and all(val[s] == first[s] for s in (5, 10, 15))
           and val.get(45) == 0.7,
           "the later log's value wins; good values of a malformed entry kept")
        st, v, _ = d.json("/history?metric=eval_loss")
        ok(st == 200 and [p[0] for p in v["series"][0]["points"]] == [20, 40],
           "eval_loss: the periodic evals")
        st, v, _ = d.json("/history?metric=learning_rate")
        lr = [p[2] for p in v["series"][0]["points"]] if st == 200 else []
        ok(len(lr) == 8 and lr == sorted(lr) and lr[0] > 0,
           "learning_rate: the warm-up rises")
        st, h, body = d.get("/history?metric=grad_norm&format=csv")
        lines = body.decode().splitlines()
        ok(st == 200 and lines[0] == "Wall time,Step,Value" and
           len(lines) == 9 and lines[1].startswith(",5,"),
           "grad_norm CSV: 8 rows, empty wall time")
        st, v, _ = d.json("/train_log")
        names = [m["name"] for m in v.get("metrics", [])]
        ok(st == 200 and names == sorted(names) and
           {"loss", "learning_rate", "grad_norm", "epoch",
            "eval_loss"} <= set(names) and "bad name!" not in names and
           not any(len(n) > 64 for n in names),
           "/train_log lists the names: %s" % names)
        st, v, _ = d.json("/history?metric=bogus_metric")
        ok(st == 400, "a metric neither per-matrix nor logged: 400")
        st, v, _ = d.json("/history?metric=snr")
        ok(st == 200 and len(v["series"]) > 0 and
           all(len(s["points"]) == 2 for s in v["series"]),
           "per-matrix history unchanged")
        log = open(d.log_path).read()
        ok("step 40: training log: 8 malformed entries or values skipped"
           in log, "one notice counts the skipped ones")
        ok(d.stop() == 0, "clean stop")
    finally:
        if d.p.poll() is None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


main()
spdtest.finish()
