#!/usr/bin/python3
"""Integration tests of reuse by content fingerprint (issue 12): a Spectrum
run (tests/spectrumd-fixture run --frozen-percent) analysed by the daemon
with reuse on and with reuse off must store the same selections and every
metric bit for bit (the heavy-tail ones included), while the frozen
matrices are reused, not solved; `spectrumd scan --cache` pays only for
what changed; and a row stored before the heavy-tail metrics (schema < 5)
is reused with its spectrum fitted. Prints TAP.

Standard library only. Usage: reuse_it.py BUILDDIR
"""
import glob
import json
import os
import re
import shutil
import sqlite3
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
LAYERS = 4
HT = ("alpha", "alpha_weighted", "ks", "log_spectral_norm", "xmin", "n_tail",
      "alpha_status")
TYPES = 7                       # q k v o gate up down
FROZEN = LAYERS * 75 // 100 * TYPES     # per checkpoint, at 75 %
COUNT = 4


def make_run(path, frozen, count=COUNT, seed=1):
    subprocess.run([FIX, "run", path, "--every", "0", "--count", str(count),
                    "--frozen-percent", str(frozen), "--layers", str(LAYERS),
                    "--hidden", "64", "--intermediate", "160", "--vocab",
                    "192", "--seed", str(seed), "-q"], check=True)


def analyse(tmp, run, extra=()):
    """Runs a daemon on run until every checkpoint is done; returns its
    /checkpoints, /metrics text and log, and the database path."""
    os.makedirs(tmp)
    d = spdtest.Daemon(SPD, tmp, run, extra)
    ck, metrics = [], ""
    try:
        if d.port is None:
            return None, "", open(d.log_path).read(), None
        ck = wait_for(lambda: (lambda v: v if v and len(v) == COUNT and all(
            c["status"] == "done" for c in v) else None)(
                d.obj("/checkpoints")), 120) or []
        metrics = d.get("/metrics")[2].decode()
    finally:
        d.stop()
    return ck, metrics, open(d.log_path).read(), os.path.join(
        tmp, "spectrumd.db")


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


def rows(db, extra_cols=""):
    """{(step, name): row of every stored metric} of a database."""
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(metrics)")
            if r[1] not in ("checkpoint_id", "matrix_id", "seconds",
                            "reused_run", "reused_step", "fingerprint",
                            "method")]
    q = ("SELECT c.step, x.name, %s, s.sv FROM metrics m"
         " JOIN checkpoints c ON c.id = m.checkpoint_id"
         " JOIN matrices x ON x.id = m.matrix_id"
         " LEFT JOIN spectra s ON s.checkpoint_id = m.checkpoint_id"
         " AND s.matrix_id = m.matrix_id" %
         ", ".join("m." + c for c in cols))
    out = {(r[0], r[1]): r[2:] for r in con.execute(q)}
    con.close()
    return out


def selections(db):
    con = sqlite3.connect(db)
    out = sorted(con.execute(
        "SELECT c.step, s.top_percent, s.version, s.modules"
        " FROM selections s JOIN checkpoints c ON c.id = s.checkpoint_id"))
    con.close()
    return out


def test_daemon(tmp):
    run = os.path.join(tmp, "run")
    make_run(run, 75)
    on, m_on, log_on, db_on = analyse(os.path.join(tmp, "on"), run)
    off, m_off, log_off, db_off = analyse(os.path.join(tmp, "off"), run,
                                          ("--no-reuse",))
    if not ok(on and off, "both daemons analyse the %d checkpoints" % COUNT):
        print("# " + log_on.replace("\n", "\n# "))
        return
    reused = sorted(c["reused"] for c in on)
    # Newest first, then backfill: the first one solves everything, each
    # later one reuses the frozen 75 % of the layer matrices.
    ok(reused == [0] + [FROZEN] * (COUNT - 1),
       "reuse on: reused per checkpoint %s (want 0 and %d)" % (reused, FROZEN))
    ok(all(c["analysed"] + c["reused"] == c["progress"]["total"]
           for c in on), "/checkpoints: analysed + reused = total")
    ok(all(c["reused"] == 0 for c in off), "reuse off: nothing reused")
    ok(metric(m_on, "spectrumd_matrices_reused_total") == FROZEN * (COUNT - 1),
       "/metrics counts the reused matrices")
    ok((metric(m_on, "spectrumd_hashed_bytes_total") or 0) > 0 and
       metric(m_off, "spectrumd_hashed_bytes_total") == 0,
       "/metrics counts hashed bytes, none with reuse off")
    ok(re.search(r"analysed: \d+ matrices \(%d reused\)" % FROZEN, log_on),
       "the log says how many were reused")
    a, b = rows(db_on), rows(db_off)
    ok(len(a) == COUNT * (LAYERS * TYPES + 2) and a.keys() == b.keys(),
       "same matrices stored (%d)" % len(a))
    diff = [k for k in a if a[k] != b[k]]
    ok(not diff, "every metric and spectrum bit-identical with reuse on and"
       " off (%d differ: %s)" % (len(diff), diff[:3]))
    ok(selections(db_on) == selections(db_off),
       "selections identical with reuse on and off")
    con = sqlite3.connect(db_on)
    bad = con.execute(
        "SELECT count(*) FROM metrics m JOIN matrices x ON x.id = m.matrix_id"
        " WHERE m.reused_step IS NOT NULL AND NOT EXISTS (SELECT 1"
        " FROM metrics o JOIN checkpoints c ON c.id = o.checkpoint_id"
        " WHERE c.step = m.reused_step AND c.run_id = m.reused_run"
        " AND o.matrix_id = m.matrix_id AND o.reused_step IS NULL"
        " AND o.fingerprint = m.fingerprint)").fetchone()[0]
    n = con.execute("SELECT count(*) FROM metrics WHERE reused_step IS NOT"
                    " NULL").fetchone()[0]
    ok(n == FROZEN * (COUNT - 1) and bad == 0, "each of the %d reused rows "
       "names the step where the same bytes were solved (%d do not)" %
       (n, bad))
    ok(con.execute("SELECT count(*) FROM metrics WHERE fingerprint IS NULL"
                   " OR length(fingerprint) != 16").fetchone()[0] == 0,
       "every row has a 16-byte fingerprint")
    nok, nfit = con.execute(
        "SELECT count(*), sum(alpha_status = 'ok' AND alpha > 1 AND ks > 0"
        " AND n_tail >= 2) FROM metrics WHERE status = 'ok' AND"
        " alpha_status IS NOT NULL").fetchone()
    ok(nok == len(a) and nfit == nok, "every row has heavy-tail metrics, "
       "all fitted (%d of %d)" % (nfit or 0, len(a)))
    cols = ", ".join("m.%s IS o.%s" % (c, c) for c in HT)
    n, bad = con.execute(
        "SELECT count(*), sum(NOT (%s)) FROM metrics m JOIN checkpoints c"
        " ON c.step = m.reused_step AND c.run_id = m.reused_run"
        " JOIN metrics o ON o.checkpoint_id = c.id"
        " AND o.matrix_id = m.matrix_id" %
        cols.replace(", ", " AND ")).fetchone()
    ok(n == FROZEN * (COUNT - 1) and bad == 0, "each of the %d reused rows "
       "has its source's heavy-tail metrics (%s differ)" % (n, bad))
    con.close()


def scan(path, out, *extra):
    p = subprocess.run([SPD, "scan", path, "--backend", "cpu", "--threads",
                        "1", "-q", "-o", out, *extra],
                       capture_output=True, text=True)
    m = re.search(r"\((\d+) reused\)", p.stdout)
    return p.returncode, int(m.group(1)) if m else -1, p


def results(out):
    f = glob.glob(os.path.join(out, "snr_results_*.json"))
    return open(f[0]).read() if len(f) == 1 else None


def test_scan(tmp):
    run = os.path.join(tmp, "srun")
    make_run(run, 75, count=2, seed=3)
    cache = os.path.join(tmp, "cache.db")
    c1, c2 = sorted(glob.glob(os.path.join(run, "checkpoint-*")))
    rc, n1, _ = scan(c1, os.path.join(tmp, "o1"), "--cache", cache)
    rc2, n2, p = scan(c2, os.path.join(tmp, "o2"), "--cache", cache)
    ok(rc == 0 and rc2 == 0 and n1 == 0 and n2 == FROZEN,
       "scan --cache: the second checkpoint reuses %d (want %d) %s" %
       (n2, FROZEN, p.stderr.strip()))
    rc, n3, _ = scan(c2, os.path.join(tmp, "o3"))
    ok(rc == 0 and n3 == 0 and results(os.path.join(tmp, "o2")) ==
       results(os.path.join(tmp, "o3")),
       "snr_results_*.json identical with and without the cache")
    # A base model and a fine-tune in another directory (another run):
    # byte-identical copies are all reused.
    tune = os.path.join(tmp, "tune")
    shutil.copytree(c1, tune)
    rc, n4, _ = scan(tune, os.path.join(tmp, "o4"), "--cache", cache)
    ok(rc == 0 and n4 == LAYERS * TYPES + 2,
       "another model with the same bytes reuses all (%d)" % n4)
    # A metric column added later (as a migration would) is copied too.
    con = sqlite3.connect(cache)
    con.execute("ALTER TABLE metrics ADD COLUMN later_metric REAL")
    con.execute("UPDATE metrics SET later_metric = 0.1 + ord")
    con.commit()
    con.close()
    tune2 = os.path.join(tmp, "tune2")
    shutil.copytree(c1, tune2)
    rc, n6, _ = scan(tune2, os.path.join(tmp, "o6"), "--cache", cache)
    con = sqlite3.connect(cache)
    got = con.execute(
        "SELECT count(*), sum(m.later_metric = 0.1 + m.ord) FROM metrics m"
        " JOIN checkpoints c ON c.id = m.checkpoint_id WHERE c.path = ?",
        (os.path.realpath(tune2),)).fetchone()
    con.close()
    ok(rc == 0 and n6 == LAYERS * TYPES + 2 and got[0] == n6 and
       got[1] == n6, "a reused row copies every metric column, also one "
       "added later (%s)" % (got,))
    # Rows stored before the heavy-tail metrics (schema < 5, NULL): reused
    # with their spectra fitted, to the values a fresh analysis gives.
    con = sqlite3.connect(cache)
    q = ("SELECT x.name, %s FROM metrics m JOIN matrices x"
         " ON x.id = m.matrix_id JOIN checkpoints c ON c.id = m.checkpoint_id"
         " WHERE c.path = ?" % ", ".join("m." + c for c in HT))
    want = {r[0]: r[1:] for r in con.execute(q, (os.path.realpath(tune),))}
    con.execute("UPDATE metrics SET %s" %
                ", ".join("%s = NULL" % c for c in HT))
    con.commit()
    con.close()
    tune3 = os.path.join(tmp, "tune3")
    shutil.copytree(c1, tune3)
    tsv = os.path.join(tmp, "t3.tsv")
    rc, n7, p = scan(tune3, os.path.join(tmp, "o7"), "--cache", cache,
                     "--timings", tsv)
    con = sqlite3.connect(cache)
    got = {r[0]: r[1:] for r in con.execute(q, (os.path.realpath(tune3),))}
    con.close()
    ok(rc == 0 and n7 == LAYERS * TYPES + 2 and len(want) == n7 and
       got == want, "rows without heavy-tail metrics are reused, fitted "
       "to the same values (%d of %d equal) %s" %
       (sum(got.get(k) == v for k, v in want.items()), len(want),
        p.stderr.strip()))
    alphas = {}
    for line in open(tsv) if os.path.exists(tsv) else ():
        f = line.rstrip("\n").split("\t")
        if f[0] != "name" and not f[0].startswith("#"):
            alphas[f[0]] = float(f[6])
    ok(alphas and all(alphas.get(k) == v[0] for k, v in want.items()),
       "--timings gives each matrix its alpha (%d)" % len(alphas))
    # Results of another method (backend or float64-redo rule) never count.
    con = sqlite3.connect(cache)
    con.execute("UPDATE metrics SET method = 'cpu/r0'")
    con.commit()
    con.close()
    rc, n5, _ = scan(c2, os.path.join(tmp, "o5"), "--cache", cache)
    ok(rc == 0 and n5 == 0, "results of another method are not reused")


def main():
    tmp = tempfile.mkdtemp(prefix="spd-reuse.")
    try:
        test_daemon(tmp)
        test_scan(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    spdtest.finish()


if __name__ == "__main__":
    main()
