#!/usr/bin/python3
"""Integration tests: the real spectrumd daemon on a loopback port with a
temporary database, fed by a simulated trainer (tests/spectrumd-fixture)
that writes checkpoints the way the HF Trainer does. Prints TAP.

Standard library only. Usage: daemon_it.py BUILDDIR
"""
import json
import os
import shutil
import signal
import sqlite3
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
def fixture(path, step, seed=1, layers=4, hidden=48, extra=()):
    subprocess.run([FIX, "checkpoint", path, "--layers", str(layers),
                    "--hidden", str(hidden), "--intermediate", str(hidden * 2),
                    "--vocab", "128", "--shards", "2", "--step", str(step),
                    "--seed", str(seed), "-q", *extra], check=True)


def Daemon(tmp, run_dir, extra=()):
    return spdtest.Daemon(SPD, tmp, run_dir, extra)


def statuses(d):
    st, v, _ = d.json("/checkpoints")
    if st != 200:
        return {}
    return {c["step"]: c["status"] for c in v}


def strict_json(body):
    """json.loads that refuses NaN/Infinity tokens."""
    def bad(tok):
        raise ValueError("non-strict token " + tok)
    return json.loads(body, parse_constant=bad)


def test_basic(tmp):
    run = os.path.join(tmp, "run")
    os.makedirs(run)
    d = Daemon(tmp, run, extra=("--api-token", "s3cret"))
    if not ok(d.port is not None, "daemon starts and logs its port"):
        print(open(d.log_path).read())
        return
    st, v, _ = d.json("/health")
    ok(st == 200 and v["status"] == "ok", "/health is ok")
    ok(wait_for(lambda: d.get("/ready")[0] == 200, 10), "/ready turns 200")
    st, v, _ = d.json("/selection")
    ok(st == 404 and "error" in v, "/selection before any checkpoint: 404 JSON")

    fixture(os.path.join(run, "checkpoint-10"), 10, seed=1)
    ok(wait_for(lambda: statuses(d).get(10) == "done"), "checkpoint-10 analysed")
    st, h, body = d.get("/selection")
    sel = strict_json(body)
    etag = h.get("ETag")
    ok(st == 200 and sel["version"] == 1 and sel["step"] == 10 and
       len(sel["parameters"]) > 0, "selection v1 for step 10")
    ok(etag is not None, "selection has an ETag")
    st, _, body = d.get("/selection", {"If-None-Match": etag})
    ok(st == 304 and body == b"", "If-None-Match -> 304")
    st, _, body = d.get("/selection?format=yaml")
    ok(st == 200 and body.startswith(b"unfrozen_parameters:\n"), "YAML format")
    st, _, body = d.get("/selection?format=regex")
    ok(st == 200 and body.split(b"\n")[0].startswith(b"^"), "regex format")

    # Long poll wakes on a new selection.
    got = {}

    def poll():
        t0 = time.time()
        got["st"], got["h"], got["body"] = d.get(
            "/selection?wait=30", {"If-None-Match": etag}, timeout=40)
        got["t"] = time.time() - t0
    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    fixture(os.path.join(run, "checkpoint-20"), 20, seed=1,
            extra=("--drift", "1.5"))
    th.join(45)
    ok(got.get("st") == 200 and strict_json(got["body"])["version"] == 2,
       "long poll woke with version 2 after %.1f s" % got.get("t", -1))
    # Same weights again: the set does not change, nor the version.
    tmp30 = os.path.join(run, "tmp-checkpoint-30")
    shutil.copytree(os.path.join(run, "checkpoint-20"), tmp30)
    ts = os.path.join(tmp30, "trainer_state.json")
    j = json.load(open(ts))
    j["global_step"] = 30
    json.dump(j, open(ts, "w"))
    os.rename(tmp30, os.path.join(run, "checkpoint-30"))
    ok(wait_for(lambda: statuses(d).get(30) == "done"), "checkpoint-30 analysed")
    st, v, _ = d.json("/selection")
    ok(v["version"] == 2 and v["step"] == 30,
       "unchanged set keeps version 2 (step %s, v%s)" % (v["step"], v["version"]))

    # tmp-checkpoint-* and dot files are ignored.
    fixture(os.path.join(run, "tmp-checkpoint-40"), 40, seed=3)
    os.makedirs(os.path.join(run, ".cache"))
    # A corrupt checkpoint: complete on disk, but its index lies.
    bad = os.path.join(run, "checkpoint-50")
    fixture(bad, 50, seed=4)
    idx = os.path.join(bad, "model.safetensors.index.json")
    j = json.load(open(idx))
    j["weight_map"]["model.layers.0.ghost.weight"] = \
        "model-00001-of-00002.safetensors"
    json.dump(j, open(idx, "w"))
    ok(wait_for(lambda: statuses(d).get(50) == "failed"), "corrupt checkpoint fails")
    st, v, _ = d.json("/checkpoints")
    c50 = [c for c in v if c["step"] == 50][0]
    ok("ghost" in (c50.get("error") or ""), "its error names the problem: %s"
       % c50.get("error"))
    ok(40 not in statuses(d), "tmp-checkpoint-40 ignored")
    fixture(os.path.join(run, "checkpoint-60"), 60, seed=5)
    ok(wait_for(lambda: statuses(d).get(60) == "done"),
       "a later checkpoint is analysed after the failure")

    st, v, _ = d.json("/history?metric=snr")
    series = v["series"]
    ok(len(series) > 0 and all(len(s["points"]) == 4 for s in series),
       "/history: one point per analysed checkpoint (4) in %d series" % len(series))
    st, h, body = d.get("/history?format=csv&match=layers\\.0\\.mlp\\.down_proj$")
    ok(st == 200 and b"Wall time,Step,Value" in body.split(b"\n")[0],
       "/history CSV has TensorBoard columns")
    st, v, _ = d.json("/history?max_points=2")
    ok(all(len(s["points"]) <= 2 for s in v["series"]), "max_points downsamples")
    st, h, body = d.get("/snr?step=latest")
    snr = strict_json(body)
    ok(st == 200 and snr["step"] == 60 and len(snr["matrices"]) > 0, "/snr latest")
    m = snr["matrices"][0]["module"]
    st, v, _ = d.json("/spectrum?step=60&matrix=" + m)
    ok(st == 200 and len(v["values"]) > 0 and "tau" in v, "/spectrum of " + m)
    st, h, body = d.get("/metrics")
    text = body.decode()
    ok(st == 200 and "spectrumd_checkpoints" in text and
       "spectrumd_analysis_seconds_bucket" in text and "NaN" not in text,
       "/metrics in Prometheus text")
    st, v, _ = d.json("/runs")
    ok(st == 200 and v[0]["name"] == "demo", "/runs lists the run")

    # Malformed requests: JSON errors with the right status.
    for path, want, method in [
            ("/selection?top_percent=0", 400, "GET"),
            ("/selection?format=xml", 400, "GET"),
            ("/snr?run=nope", 404, "GET"),
            ("/snr?step=abc", 400, "GET"),
            ("/history?match=(", 400, "GET"),
            ("/nothing", 404, "GET"),
            ("/selection?x=" + "a" * 9000, 414, "GET"),
            ("/selection", 405, "DELETE"),
            ("/rescan", 401, "POST")]:
        st, _, body = d.get(path, method=method)
        try:
            e = strict_json(body)["error"]
            good = st == want and e["code"] and e["message"]
        except Exception:
            good = False
        ok(good, "%s %s -> %d JSON error (got %d)" % (method, path[:40], want, st))
    st, v, _ = d.json("/rescan", method="POST",
                      headers={"Authorization": "Bearer s3cret"})
    ok(st == 202, "POST /rescan with the token -> 202")

    # SSE: a checkpoint event arrives on /events.
    events = []

    def sse():
        req = urllib.request.Request(d.url("/events"))
        with urllib.request.urlopen(req, timeout=30) as r:
            for line in r:
                if line.startswith(b"event: "):
                    events.append(line[7:].strip().decode())
                    if "selection" in events or len(events) > 20:
                        return
    th = threading.Thread(target=sse, daemon=True)
    th.start()
    time.sleep(0.5)
    fixture(os.path.join(run, "checkpoint-70"), 70, seed=77)
    th.join(30)
    ok("checkpoint" in events and "progress" in events,
       "/events streams checkpoint and progress events: %s" % events[:6])

    t0 = time.time()
    code = d.stop()
    ok(code == 0 and time.time() - t0 < 5, "SIGTERM: exit %d in %.2f s" %
       (code, time.time() - t0))
    db = sqlite3.connect(os.path.join(tmp, "spectrumd.db"))
    dup = db.execute("select count(*) from (select run_id, path, count(*) c "
                     "from checkpoints group by 1, 2 having c > 1)").fetchone()[0]
    ok(dup == 0, "no duplicate checkpoint rows")


def test_crash_restart(tmp):
    """kill -9 mid-analysis, restart: analysed exactly once, nothing lost."""
    run = os.path.join(tmp, "run2")
    os.makedirs(run)
    fixture(os.path.join(run, "checkpoint-1"), 1, seed=1)
    d = Daemon(tmp, run)
    ok(wait_for(lambda: statuses(d).get(1) == "done"), "first checkpoint done")
    c1 = [c for c in d.json("/checkpoints")[1] if c["step"] == 1][0]
    # A bigger checkpoint takes a few seconds on one thread.
    fixture(os.path.join(run, "checkpoint-2"), 2, seed=2, layers=4, hidden=1024)
    ok(wait_for(lambda: statuses(d).get(2) == "analyzing", 30, 0.02),
       "big checkpoint is being analysed")
    def progress2():
        st, v, _ = d.json("/checkpoints")
        c2 = [c for c in v if c["step"] == 2]
        p = c2[0].get("progress") if c2 else None
        return p if p and c2[0]["status"] == "analyzing" and \
            p["total"] == 30 and 0 < p["done"] < 30 else None
    p = wait_for(progress2, 30, 0.05)
    ok(p is not None, "progress is visible mid-analysis: %s" % p)
    d.stop(signal.SIGKILL)
    d2 = Daemon(tmp, run)
    ok(wait_for(lambda: statuses(d2).get(2) == "done", 60),
       "after kill -9 and restart the checkpoint is analysed")
    c1b = [c for c in d2.json("/checkpoints")[1] if c["step"] == 1][0]
    ok(c1b["finished"] == c1["finished"],
       "the stored checkpoint was not analysed again")
    db = sqlite3.connect(os.path.join(tmp, "spectrumd.db"))
    rows = db.execute("select c.step, count(m.matrix_id) from checkpoints c "
                      "left join metrics m on m.checkpoint_id = c.id "
                      "where c.path like ? group by c.id order by c.step",
                      (run + "%",)).fetchall()
    ok(len(rows) == 2 and rows[0][1] == 30 and rows[1][1] == 30,
       "both checkpoints stored once, earlier results intact: %s" % rows)
    # SIGTERM during an analysis: exit 0 soon, nothing partial stored.
    fixture(os.path.join(run, "checkpoint-3"), 3, seed=3, layers=4, hidden=1024)
    ok(wait_for(lambda: statuses(d2).get(3) == "analyzing", 30, 0.02),
       "third checkpoint is being analysed")
    t0 = time.time()
    code = d2.stop()
    dt = time.time() - t0
    ok(code == 0 and dt < 3, "SIGTERM mid-analysis: exit %d in %.2f s" % (code, dt))
    n3 = db.execute("select count(*) from metrics m join checkpoints c on "
                    "c.id = m.checkpoint_id where c.step = 3 and c.path like ?",
                    (run + "%",)).fetchone()[0]
    st3 = db.execute("select status from checkpoints where step = 3 and "
                     "path like ?", (run + "%",)).fetchone()[0]
    ok(n3 == 0 and st3 == "pending", "nothing partial committed (%d rows, %s)"
       % (n3, st3))


def test_backlog(tmp):
    """A backlog is analysed newest first; /selection serves the newest."""
    run = os.path.join(tmp, "run3")
    for step in (100, 200, 300):
        fixture(os.path.join(run, "checkpoint-%d" % step), step,
                extra=("--drift", "1.5"))
    d = Daemon(tmp, run, extra=("--db", os.path.join(tmp, "backlog.db")))
    ok(wait_for(lambda: set(statuses(d).values()) == {"done"} and
                len(statuses(d)) == 3), "backlog of 3 checkpoints analysed")
    st, v, _ = d.json("/checkpoints")
    order = sorted(v, key=lambda c: c["finished"] or 0)
    ok(order[0]["step"] == 300, "newest analysed first (order %s)"
       % [c["step"] for c in order])
    st, v, _ = d.json("/selection")
    ok(st == 200 and v["step"] == 300, "/selection serves step 300 (got %s)"
       % v.get("step"))
    ok(d.stop() == 0, "clean stop")


def test_reload_and_bad_db(tmp):
    """SIGHUP re-reads the runs; a database that is not one stops start-up."""
    a, b = os.path.join(tmp, "ra"), os.path.join(tmp, "rb")
    fixture(os.path.join(a, "checkpoint-1"), 1)
    fixture(os.path.join(b, "checkpoint-7"), 7)
    conf = os.path.join(tmp, "spectrumd.conf")
    with open(conf, "w") as f:
        f.write("# test\ntop_percent = 50\n[run a]\ndir = %s\n" % a)
    d = Daemon(tmp, None, extra=("--config", conf, "--db",
                                 os.path.join(tmp, "reload.db")))
    ok(wait_for(lambda: d.json("/runs")[0] == 200 and
                [r["name"] for r in d.json("/runs")[1]] == ["a"]),
       "config file run a is watched")
    with open(conf, "a") as f:
        f.write("[run b]\ndir = %s\n" % b)
    d.p.send_signal(signal.SIGHUP)
    ok(wait_for(lambda: sorted(r["name"] for r in d.json("/runs")[1]) ==
                ["a", "b"]), "after SIGHUP run b is watched too")
    ok(wait_for(lambda: d.json("/checkpoints?run=b")[0] == 200 and
                [c["status"] for c in d.json("/checkpoints?run=b")[1]] ==
                ["done"]), "run b's checkpoint analysed")
    st, v, _ = d.json("/selection?run=b")
    ok(st == 200 and v["top_percent"] == 50, "top_percent from the file")
    ok(d.stop() == 0, "clean stop after reload")

    bad = os.path.join(tmp, "not-a.db")
    with open(bad, "wb") as f:
        f.write(b"this is not an SQLite database" * 100)
    p = subprocess.run([SPD, "--watch", a, "--db", bad, "--listen",
                        "127.0.0.1:0", "--backend", "cpu"],
                       capture_output=True, text=True, timeout=20)
    ok(p.returncode == 1 and "not-a.db" in p.stderr,
       "a corrupt database stops start-up with a message: %s"
       % p.stderr.strip().splitlines()[-1:])


def test_notify(tmp):
    """Type=notify: READY=1 once serving, STATUS while analysing, STOPPING=1."""
    import socket
    path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    run = os.path.join(tmp, "run4")
    fixture(os.path.join(run, "checkpoint-5"), 5)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        d = Daemon(tmp, run, extra=("--db", os.path.join(tmp, "notify.db")))
    finally:
        del os.environ["NOTIFY_SOCKET"]
    msgs = []

    def drain():
        try:
            while True:
                msgs.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        return msgs
    ok(wait_for(lambda: "READY=1" in drain(), 10), "READY=1 sent")
    ok(wait_for(lambda: any(m.startswith("STATUS=analysing") for m in
                            drain()), 20), "STATUS=analysing … sent")
    d.stop()
    drain()
    ok("STOPPING=1" in msgs, "STOPPING=1 sent on SIGTERM")
    sock.close()


def main():
    tmp = tempfile.mkdtemp(prefix="spd-it.")
    try:
        test_basic(tmp)
        test_crash_restart(tmp)
        test_backlog(tmp)
        test_reload_and_bad_db(tmp)
        test_notify(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    spdtest.finish()


if __name__ == "__main__":
    main()
