#!/usr/bin/python3
"""Integration tests of operator faults (issue 9): run directories that
appear late or are replaced, checkpoints that stay incomplete, and the
database deleted, shared or on a full disk under the running daemon.
Loopback only; each test under a minute. Prints TAP.

Standard library only. Usage: faults_it.py BUILDDIR
The full-disk test mounts a small tmpfs: it needs root, or the wrapper runs
this file under `unshare --user --map-root-user --mount`; else it skips.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SPD = os.path.join(BUILD, "spectrumd")
FIX = os.path.join(BUILD, "tests", "spectrumd-fixture")


def fixture(path, step, seed=1, hidden=48, shards=2):
    subprocess.run([FIX, "checkpoint", path, "--layers", "4", "--hidden",
                    str(hidden), "--intermediate", str(hidden * 2), "--vocab",
                    "128", "--shards", str(shards), "--step", str(step),
                    "--seed", str(seed), "-q"], check=True)


def Daemon(tmp, run_dir, extra=()):
    return spdtest.Daemon(SPD, tmp, run_dir, extra)


def ckpts(d):
    """{step: checkpoint object} of run demo, {} when unavailable."""
    v = d.obj("/checkpoints")
    return {c["step"]: c for c in v} if v else {}


def status(d, step):
    return ckpts(d).get(step, {}).get("status")


def run_state(d):
    v = d.obj("/runs")
    return v[0].get("state") if v else None


def metric(d, name):
    """The value of one sample line of /metrics (exact name+labels)."""
    try:
        st, _, body = d.get("/metrics")
    except OSError:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def ready_status(d):
    """The status of GET /ready, None when the daemon is gone."""
    try:
        return d.get("/ready", timeout=5)[0]
    except OSError:
        return None


def log_of(d):
    with open(d.log_path) as f:
        return f.read()


def test_missing_at_start(tmp):
    """A run directory created after start-up is watched within seconds."""
    run = os.path.join(tmp, "late", "run")
    d = Daemon(tmp, run)
    ok(wait_for(lambda: run_state(d) == "missing", 10),
       "missing run dir: /runs state is 'missing'")
    ok(wait_for(lambda: d.get("/ready")[0] == 200, 10),
       "a missing run does not keep the daemon from being ready")
    t0 = time.time()
    os.makedirs(run)
    ok(wait_for(lambda: run_state(d) == "watching", 5),
       "run dir appears: 'watching' after %.1f s (no SIGHUP)"
       % (time.time() - t0))
    fixture(os.path.join(run, "checkpoint-5"), 5)
    t0 = time.time()
    ok(wait_for(lambda: status(d, 5) == "done", 30),
       "a checkpoint written into it is analysed (%.1f s)"
       % (time.time() - t0))
    ok(d.stop() == 0, "clean stop")


def test_removed_recreated(tmp):
    """A run dir removed (or moved away) and recreated is watched again."""
    run = os.path.join(tmp, "again")
    fixture(os.path.join(run, "checkpoint-1"), 1)
    d = Daemon(tmp, run, extra=("--db", os.path.join(tmp, "again.db")))
    ok(wait_for(lambda: status(d, 1) == "done", 30), "first checkpoint done")
    ok(run_state(d) == "watching", "/runs state is 'watching'")
    shutil.rmtree(run)
    ok(wait_for(lambda: run_state(d) == "missing", 5),
       "removed: state 'missing'")
    os.makedirs(run)
    fixture(os.path.join(run, "checkpoint-2"), 2, seed=2)
    ok(wait_for(lambda: status(d, 2) == "done", 30),
       "recreated: its new checkpoint is analysed")
    os.rename(run, run + ".old")       # moved away: the watch follows the
    os.makedirs(run)                   # old inode unless it is dropped
    fixture(os.path.join(run, "checkpoint-3"), 3, seed=3)
    ok(wait_for(lambda: status(d, 3) == "done", 30),
       "moved away and recreated: its new checkpoint is analysed")
    fixture(os.path.join(run + ".old", "checkpoint-4"), 4, seed=4)
    time.sleep(1.5)
    ok(status(d, 4) is None, "the moved-away directory is not watched")
    ok(d.stop() == 0, "clean stop")


def test_truncated(tmp):
    """A truncated shard shows as incomplete at once, failed after the
    grace, is counted, and is analysed once it is whole."""
    run = os.path.join(tmp, "trunc")
    fixture(os.path.join(run, "checkpoint-10"), 10)
    stage = os.path.join(tmp, "stage-20")
    fixture(stage, 20, seed=2)
    shard = "model-00001-of-00002.safetensors"
    whole = os.path.join(tmp, "whole.safetensors")
    shutil.copy(os.path.join(stage, shard), whole)
    size = os.path.getsize(whole)
    with open(os.path.join(stage, shard), "r+b") as f:
        f.truncate(size // 2)
    d = Daemon(tmp, run, extra=("--db", os.path.join(tmp, "trunc.db"),
                                "--incomplete-grace-s", "3"))
    ok(wait_for(lambda: status(d, 10) == "done", 30), "step 10 analysed")
    os.rename(stage, os.path.join(run, "checkpoint-20"))
    t0 = time.time()
    c = wait_for(lambda: ckpts(d).get(20), 10)
    ok(c is not None and c["status"] == "incomplete",
       "truncated shard: step 20 is 'incomplete' after %.1f s"
       % (time.time() - t0))
    err = (c or {}).get("error") or ""
    ok(shard in err and ("%d of %d bytes" % (size // 2, size)) in err,
       "the reason names the file and its size against the header's: %s"
       % err)
    ok(c is not None and c.get("incomplete_since") is not None,
       "incomplete_since is shown")
    f = wait_for(lambda: ckpts(d).get(20, {}).get("status") == "failed" and
                 ckpts(d)[20], 15)
    ok(f and "incomplete for" in f["error"] and shard in f["error"],
       "past the grace: 'failed' with the reason (%.1f s): %s"
       % (time.time() - t0, (f or {}).get("error")))
    ok(metric(d, 'spectrumd_checkpoints{run="demo",status="failed"}') == 1,
       "/metrics counts it as failed")
    ok(metric(d, "spectrumd_checkpoints_given_up_total") == 1,
       "/metrics spectrumd_checkpoints_given_up_total is 1")
    d.p.send_signal(signal.SIGHUP)     # rescans must not log it again
    time.sleep(1.5)
    lines = [ln for ln in log_of(d).splitlines() if "step 20 failed" in ln]
    ok(len(lines) == 1 and lines[0].startswith("warning: "),
       "logged once, at warning: %s" % lines)
    sel = d.obj("/selection")
    ok(sel is not None and sel["step"] == 10, "/selection stays on step 10")
    tmpf = os.path.join(run, "checkpoint-20", "." + shard + ".tmp")
    shutil.copy(whole, tmpf)            # the trainer finishes the file
    os.rename(tmpf, os.path.join(run, "checkpoint-20", shard))
    ok(wait_for(lambda: status(d, 20) == "done", 30),
       "once whole, step 20 is analysed")
    sel = d.obj("/selection")
    ok(sel is not None and sel["step"] == 20, "/selection moves to step 20")
    ok(d.stop() == 0, "clean stop")


def test_db_deleted(tmp):
    """The database deleted (or replaced) under the daemon: it stops with
    status 1 and an err line, never logging a result as stored."""
    for how in ("deleted", "replaced"):
        run = os.path.join(tmp, "del-" + how)
        fixture(os.path.join(run, "checkpoint-1"), 1)
        db = os.path.join(tmp, "del-%s.db" % how)
        d = Daemon(tmp, run, extra=("--db", db))
        ok(wait_for(lambda: status(d, 1) == "done", 30),
           "%s: step 1 stored" % how)
        fixture(os.path.join(run, "checkpoint-2"), 2, seed=2, hidden=768)
        wait_for(lambda: status(d, 2) == "analyzing", 30, 0.02)
        if how == "deleted":
            os.unlink(db)
        else:
            shutil.copy(db, db + ".new")
            os.rename(db + ".new", db)
        t0 = time.time()
        seen503 = wait_for(lambda: ready_status(d) in (503, None), 3, 0.02)
        try:
            code = d.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        dt = time.time() - t0
        log = log_of(d)
        ok(code == 1, "%s: the daemon exits with status 1 (%s) after %.1f s"
           % (how, code, dt))
        ok(re.search(r"^error: .*database file .* was %s" % how, log, re.M),
           "%s: logged at err" % how)
        ok("step 2 analysed" not in log,
           "%s: no success logged for the result that went nowhere" % how)
        print("# /ready went 503 (or the port closed) before the exit: %s"
              % bool(seen503))
        d.stop()


def test_second_daemon(tmp):
    """A second daemon on the same database refuses to start."""
    run = os.path.join(tmp, "two")
    os.makedirs(run)
    db = os.path.join(tmp, "two.db")
    d = Daemon(tmp, run, extra=("--db", db))
    ok(wait_for(lambda: d.get("/ready")[0] == 200, 10), "first daemon ready")
    p = subprocess.run([SPD, "--watch", run, "--db", db, "--listen",
                        "127.0.0.1:0", "--backend", "cpu"],
                       capture_output=True, text=True, timeout=20)
    ok(p.returncode == 1 and "in use by another spectrumd" in p.stderr,
       "second daemon: exit %d: %s" % (p.returncode,
                                       p.stderr.strip().splitlines()[-1:]))
    ok(d.get("/ready")[0] == 200, "the first one still serves")
    ok(d.stop() == 0, "clean stop")
    p = subprocess.Popen([SPD, "--watch", run, "--db", db, "--listen",
                          "127.0.0.1:0", "--backend", "cpu"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1)
    alive = p.poll() is None
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=15)
    ok(alive, "after the first stopped, another starts on that database")


def mount_tmpfs(path, size):
    """Mounts a tmpfs of size at path; False when not allowed here."""
    os.makedirs(path)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", path], capture_output=True)
    return r.returncode == 0


def fill(path):
    """Writes path until the filesystem is full."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                pass


def test_full_disk(tmp):
    """A full disk under the database: /ready false and /metrics say so,
    results wait in memory, and all comes back when space returns."""
    fs = os.path.join(tmp, "smallfs")
    if not mount_tmpfs(fs, "2m"):
        ok(True, "full disk # SKIP cannot mount a tmpfs here")
        return
    try:
        run = os.path.join(tmp, "full")
        fixture(os.path.join(run, "checkpoint-1"), 1)
        d = Daemon(tmp, run, extra=("--db", os.path.join(fs, "s.db")))
        ok(wait_for(lambda: status(d, 1) == "done", 30), "step 1 stored")
        ok(metric(d, "spectrumd_db_writable") == 1, "db writable: 1")
        filler = os.path.join(fs, "filler")
        fill(filler)
        fixture(os.path.join(run, "checkpoint-2"), 2, seed=2, hidden=256)
        ok(wait_for(lambda: d.get("/ready")[0] == 503, 30),
           "disk full: /ready turns 503")
        st, v, _ = d.json("/ready")
        ok(st == 503 and "full" in v["error"]["message"],
           "/ready says why: %s" % v["error"]["message"])
        ok(metric(d, "spectrumd_db_writable") == 0,
           "/metrics spectrumd_db_writable 0")
        ok((metric(d, 'spectrumd_db_errors_total{kind="full"}') or 0) >= 1,
           "/metrics spectrumd_db_errors_total{kind=\"full\"} counts it")
        ok(status(d, 1) == "done" and d.obj("/selection")["step"] == 1,
           "what is stored is still served")
        time.sleep(6)                  # a retry or two while still full
        n = len([ln for ln in log_of(d).splitlines()
                 if "database full" in ln])
        ok(n == 1, "logged once per state change, not per retry (%d)" % n)
        os.unlink(filler)
        t0 = time.time()
        ok(wait_for(lambda: d.get("/ready")[0] == 200, 30),
           "space back: /ready is 200 again after %.1f s" % (time.time() - t0))
        ok(wait_for(lambda: status(d, 2) == "done", 30),
           "the waiting result is stored")
        ok(metric(d, "spectrumd_db_writable") == 1, "db writable: 1 again")
        ok("writable again" in log_of(d), "recovery is logged")
        # Full at the commit of a finished analysis: the result is held in
        # memory and stored when space returns, without a second analysis.
        fixture(os.path.join(run, "checkpoint-3"), 3, seed=3, hidden=1024)
        ok(wait_for(lambda: status(d, 3) == "analyzing", 30, 0.02),
           "step 3 is being analysed")
        started = ckpts(d)[3]["started"]
        fill(filler)
        ok(wait_for(lambda: d.get("/ready")[0] == 503, 30),
           "full at the commit: /ready turns 503")
        os.unlink(filler)
        ok(wait_for(lambda: status(d, 3) == "done", 30),
           "space back: step 3 stored")
        ok(ckpts(d)[3]["started"] == started and
           log_of(d).count("step 3 analysed") == 1,
           "from the held result: analysed once")
        ok(d.get("/ready")[0] == 200, "/ready is 200 again")
        ok(d.stop() == 0, "clean stop")
    finally:
        subprocess.run(["umount", "-l", fs], capture_output=True)


V1_SELECTIONS = """CREATE TABLE selections (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,
  top_percent INTEGER NOT NULL CHECK (top_percent BETWEEN 1 AND 100),
  version INTEGER NOT NULL CHECK (version >= 1),
  modules TEXT NOT NULL,
  body TEXT NOT NULL,
  created REAL NOT NULL,
  UNIQUE (run_id, checkpoint_id, top_percent))"""

V1_CHECKPOINTS = """CREATE TABLE checkpoints_v1 (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL, path TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'analyzing', 'done',
    'failed', 'unsupported', 'vanished')),
  error TEXT, done INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL DEFAULT 0, wall_time REAL NOT NULL DEFAULT 0,
  started REAL NOT NULL DEFAULT 0, finished REAL NOT NULL DEFAULT 0,
  seconds REAL NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
  backend TEXT, UNIQUE (run_id, path))"""


def test_upgrade(tmp):
    """A schema-1 database (no 'incomplete') is migrated in place: stored
    results survive the rebuilt table, the new status is accepted."""
    import sqlite3
    run = os.path.join(tmp, "upg")
    fixture(os.path.join(run, "checkpoint-1"), 1)
    path = os.path.join(tmp, "upg.db")
    d = Daemon(tmp, run, extra=("--db", path))
    ok(wait_for(lambda: status(d, 1) == "done", 30), "step 1 stored")
    ok(d.stop() == 0, "clean stop")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("BEGIN")
    db.execute(V1_CHECKPOINTS)
    db.execute("INSERT INTO checkpoints_v1 SELECT id, run_id, step, path,"
               " status, error, done, total, wall_time, started, finished,"
               " seconds, bytes, backend FROM checkpoints")
    db.execute("DROP TABLE checkpoints")
    db.execute("ALTER TABLE checkpoints_v1 RENAME TO checkpoints")
    db.execute("CREATE INDEX checkpoints_step ON checkpoints (run_id, step)")
    # Schema 1's selections held rendered bodies, not facts.
    db.execute("DROP TABLE selection_members")
    db.execute("DROP TABLE selection_base")
    db.execute("DROP TABLE selections")
    db.execute(V1_SELECTIONS)
    db.execute("INSERT INTO selections (run_id, checkpoint_id, top_percent,"
               " version, modules, body, created) SELECT run_id, id, 25, 7,"
               " 'x', '{}', 0 FROM checkpoints")
    # Schema 1 had no fingerprints either (schema 4 added them), nor the
    # heavy-tail metrics (schema 5), nor the training log (schema 6), nor
    # alerts (schema 7).
    db.execute("DROP TABLE train_log")
    db.execute("DROP TABLE alert_modules")
    db.execute("DROP TABLE alerts")
    db.execute("DROP INDEX metrics_fingerprint")
    for col in ("fingerprint", "method", "reused_run", "reused_step",
                "alpha", "alpha_weighted", "ks", "log_spectral_norm",
                "xmin", "n_tail", "alpha_status"):
        db.execute("ALTER TABLE metrics DROP COLUMN " + col)
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    nmet = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    db.close()
    d = Daemon(tmp, run, extra=("--db", path))
    ok(wait_for(lambda: status(d, 1) == "done", 10),
       "after the upgrade step 1 is still done")
    sel = d.obj("/selection") or {}
    ok(sel.get("step") == 1 and sel.get("version") == 8,
       "its selection is rebuilt from the metrics, the version going on "
       "from the old ones (v%s)" % sel.get("version"))
    stage = os.path.join(tmp, "upg-2")
    fixture(stage, 2, seed=2, shards=1)
    with open(os.path.join(stage, "model.safetensors"), "r+b") as f:
        f.truncate(1000)
    os.rename(stage, os.path.join(run, "checkpoint-2"))
    ok(wait_for(lambda: status(d, 2) == "incomplete", 10),
       "the upgraded schema takes 'incomplete'")
    ok(d.stop() == 0, "clean stop")
    db = sqlite3.connect(path)
    ok(db.execute("PRAGMA user_version").fetchone()[0] == 7 and
       db.execute("SELECT count(*) FROM metrics").fetchone()[0] == nmet and
       db.execute("SELECT count(*) FROM metrics WHERE fingerprint IS NULL")
       .fetchone()[0] == nmet and nmet > 0,
       "schema migrated to the current one (7), all %d metric rows kept "
       "(no fingerprints: never reused)" % nmet)
    ok(db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                  " AND name = 'train_log'").fetchone()[0] == 1,
       "the training log table is made by the upgrade")
    ok(db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                  " AND name IN ('alerts', 'alert_modules')").fetchone()[0]
       == 2, "the alert tables are made by the upgrade")
    ok(db.execute("SELECT count(*) FROM metrics WHERE alpha_status IS NULL"
                  " AND alpha IS NULL AND alpha_weighted IS NULL AND ks IS"
                  " NULL AND log_spectral_norm IS NULL AND xmin IS NULL AND"
                  " n_tail IS NULL").fetchone()[0] == nmet,
       "the old rows have no heavy-tail metrics (NULL: not computed)")
    db.close()


def main():
    tmp = tempfile.mkdtemp(prefix="spd-faults.")
    try:
        test_missing_at_start(tmp)
        test_removed_recreated(tmp)
        test_truncated(tmp)
        test_db_deleted(tmp)
        test_second_daemon(tmp)
        test_upgrade(tmp)
        test_full_disk(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    spdtest.finish()


if __name__ == "__main__":
    main()
