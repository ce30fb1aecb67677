#!/usr/bin/python3
"""Integration tests: the selection's single owner across restarts. An
operator changes top_percent or include_embeddings and restarts the
daemon: the served selection is recomputed from the stored metrics (no
SVD) before /ready, and every format (JSON, YAML, regex) renders the same
stored facts under one ETag; with stickiness the rebuilt selections keep
the preceding step's modules (version, churn, /lr_scales, and
/selection/diff and /selection/history, which show the stored
selections). Prints TAP.

Standard library only. Usage: selection_it.py BUILDDIR
"""
import os
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


def fixture(path, step, seed):
    subprocess.run([FIX, "checkpoint", path, "--layers", "8", "--hidden", "48",
                    "--intermediate", "96", "--vocab", "128", "--step",
                    str(step), "--seed", str(seed), "-q"], check=True)


def served(d):
    """(json, etag, yaml, yaml etag, regex) of /selection right after
    /ready, without waiting for anything else."""
    st, js, h = d.json("/selection")
    sy, _, y = d.get("/selection?format=yaml")
    yh = d.get("/selection?format=yaml")[1]
    sr, _, rx = d.get("/selection?format=regex")
    if st != 200 or sy != 200 or sr != 200:
        return None
    return js, h.get("ETag"), y.decode(), yh.get("ETag"), rx.decode()


def ready(d):
    try:
        return d.get("/ready")[0] == 200
    except OSError:
        return False


def start(tmp, run, extra=()):
    d = spdtest.Daemon(SPD, tmp, run, extra=extra)
    ok(d.port is not None and wait_for(lambda: ready(d), 20),
       "daemon %s starts and is ready" % " ".join(extra))
    return d


def history_checks(d, q, diff=True):
    """/selection/history?modules=1<q> of d's run, checked: its last step
    is /selection's (modules, version, step), each step's members are the
    one before's with its added and removed, and (diff) those equal
    /selection/diff's between consecutive steps. The history, or None."""
    st, h, _ = d.json("/selection/history?modules=1" + q)
    st2, sel, _ = d.json("/selection?" + q.lstrip("&"))
    if st != 200 or st2 != 200 or not h["steps"]:
        ok(False, "/selection/history%s: %s, /selection %s" % (q, st, st2))
        return None
    last = h["steps"][-1]
    ok(last["modules"] == sorted(sel["modules"]) and
       last["version"] == sel["version"] and last["step"] == sel["step"] and
       last["count"] == len(sel["modules"]),
       "/selection/history%s: the last step is /selection's (step %d, "
       "version %d)" % (q, last["step"], last["version"]))
    prev, chain, same = set(), True, True
    for i, x in enumerate(h["steps"]):
        chain = chain and set(x["modules"]) == (
            prev | set(x["added"])) - set(x["removed"]) and \
            not set(x["added"]) & prev and set(x["removed"]) <= prev
        if diff and i > 0:
            s, dd, _ = d.json("/selection/diff?from=%d&to=%d%s" % (
                h["steps"][i - 1]["step"], x["step"], q))
            same = same and s == 200 and \
                sorted(a["module"] for a in dd["added"]) == x["added"] and \
                sorted(r["module"] for r in dd["removed"]) == x["removed"]
        prev = set(x["modules"])
    ok(chain, "/selection/history%s: each step = the one before + added "
       "- removed" % q)
    if diff:
        ok(same, "/selection/history%s: added/removed = /selection/diff's "
           "between consecutive steps" % q)
    return h


def main():
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        os.makedirs(run)
        fixture(os.path.join(run, "checkpoint-10"), 10, 1)
        fixture(os.path.join(run, "checkpoint-20"), 20, 7)
        d = start(tmp, run)
        try:
            ok(wait_for(lambda: all(c["status"] == "done" for c in
                                    d.obj("/checkpoints") or [{}]) and
                        len(d.obj("/checkpoints") or []) == 2, 60),
               "both checkpoints analysed")
            first = served(d)
        finally:
            ok(d.stop() == 0, "stopped")
        ok(first is not None and first[1] == first[3] and
           first[0]["top_percent"] == 25, "25%%: JSON and YAML under one "
           "ETag %s" % (first and first[1]))

        # An operator changes top_percent: served at once, from metrics.
        d = start(tmp, run, ("--top-percent", "50"))
        try:
            got = served(d)
            log = open(d.log_path).read()
        finally:
            ok(d.stop() == 0, "stopped")
        ok(got is not None, "--top-percent 50 after a restart: /selection "
           "answers at once in every format (was 404 until a new "
           "checkpoint)")
        if got is not None:
            js, etag, yaml, yetag, rx = got
            ok(js["top_percent"] == 50 and js["step"] == 20 and
               etag == yetag and etag.startswith('"demo-50-'),
               "JSON at 50%% for step 20, ETag %s for JSON and YAML" % etag)
            ok(len(js["modules"]) > len(first[0]["modules"]),
               "50%% selects more modules than 25%% (%d > %d)"
               % (len(js["modules"]), len(first[0]["modules"])))
            ok(all("- " + m in yaml.splitlines() or
                   "- ^%s.weight$" % m in yaml.splitlines()
                   for m in js["modules"]) and
               len([ln for ln in rx.splitlines() if ln]) ==
               len(js["modules"]), "YAML and regex hold the JSON's modules")
        ok("from stored metrics" in log and
           log.index("from stored metrics") < log.index("listening"),
           "the selection was recomputed before the daemon listened")
        ok("analysed:" not in log, "and no checkpoint was analysed again")

        # An operator turns embeddings off: JSON and YAML agree.
        d = start(tmp, run, ("--include-embeddings", "false"))
        try:
            got = served(d)
        finally:
            ok(d.stop() == 0, "stopped")
        if ok(got is not None, "--include-embeddings false: /selection "
              "answers at once"):
            js, etag, yaml, yetag, rx = got
            emb = [m for m in first[0]["modules"]
                   if m in ("lm_head", "model.embed_tokens")]
            listed = [ln for ln in yaml.splitlines() if ln.startswith("- ")]
            ok(emb and not any(m in js["modules"] for m in emb) and
               not any("lm_head" in ln or "embed_tokens" in ln
                       for ln in listed) and "lm_head" not in rx,
               "no embeddings in JSON, YAML or regex (had %s)" % emb)
            ok(etag == yetag and etag.startswith('"demo-25n-') and
               etag != first[1], "its own ETag series: %s" % etag)

        # Back to the first settings: the first answer, same version.
        d = start(tmp, run)
        try:
            again = served(d)
        finally:
            ok(d.stop() == 0, "stopped")
        ok(again is not None and again[1] == first[1] and
           again[0]["modules"] == first[0]["modules"] and
           again[2] == first[2], "back at 25%% with embeddings: the same "
           "selection, ETag %s" % (again and again[1]))

        # Stickiness: at 40 % the two checkpoints (other seeds) select
        # different sets (a daemon with a database of its own, no
        # stickiness, says which); rebuilt with a margin larger than any
        # type, the step-20 selection keeps step 10's set: version 1,
        # churn 0, and /selection/diff shows the stored selections.
        d = start(tmp, run, ("--top-percent", "40", "--db",
                             os.path.join(tmp, "plain.db")))
        try:
            wait_for(lambda: len([c for c in d.obj("/checkpoints") or []
                                  if c["status"] == "done"]) == 2, 60)
            st, diff, _ = d.json("/selection/diff?from=10&to=20")
        finally:
            ok(d.stop() == 0, "stopped")
        d = start(tmp, run, ("--top-percent", "40", "--stickiness", "1000"))
        try:
            st1, sdiff, _ = d.json("/selection/diff?top_percent=40&from=10"
                                   "&to=20")
            st2, js, _ = d.json("/selection")
            st3, sc, _ = d.json("/lr_scales")
            st4, _, metrics = d.get("/metrics")
            st5, walk, _ = d.json("/selection?top_percent=30")
            st6, diff30, _ = d.json("/selection/diff?top_percent=30&from=10"
                                    "&to=20")
            hist = history_checks(d, "")
            hist30 = history_checks(d, "&top_percent=30", diff=False)
        finally:
            ok(d.stop() == 0, "stopped")
        ok(st == 200 and diff["added"] and diff["removed"],
           "without stickiness 40%% changes from step 10 to 20 (%d in)"
           % (len(diff["added"]) if st == 200 else -1))
        ok(st2 == 200 and js["step"] == 20 and js["version"] == 1,
           "--stickiness 1000: step 20 keeps step 10's set, version %s"
           % (js.get("version") if st2 == 200 else None))
        ok(st == 200 and st2 == 200 and
           not {a["module"] for a in diff["added"]} & set(js["modules"]) and
           {r["module"] for r in diff["removed"]} <= set(js["modules"]),
           "none of the newcomers in, every module that would go kept")
        ok(st1 == 200 and sdiff["added"] == [] and
           sdiff["removed"] == [] and sdiff["to"]["step"] == 20 and
           sdiff["from"]["step"] == 10,
           "/selection/diff from 10 to 20 at 40%: the stored selections "
           "(stickiness kept the set), not ones recomputed without it")
        ok(st4 == 200 and
           b'spectrumd_selection_churn{run="demo"} 0\n' in metrics,
           "/metrics: spectrumd_selection_churn 0")
        ok(st3 == 200 and sc["version"] == 1 and
           set(sc["scales"]) == set(js["modules"]) and
           max(sc["scales"].values()) == 2.0 and
           min(sc["scales"].values()) == 1.0,
           "/lr_scales: one multiplier per selected module, 1.0 to 2.0")
        ok(st5 == 200 and st6 == 200 and diff30["added"] and
           walk["version"] == 1 and walk["step"] == 20,
           "/selection at another top_percent walks with stickiness too "
           "(version %s); /selection/diff there, with nothing stored, "
           "computes both sides from the metrics"
           % (walk.get("version") if st5 == 200 else None))
        ok(hist is not None and hist["stickiness"] == 1000 and
           [x["step"] for x in hist["steps"]] == [10, 20] and
           hist["steps"][1]["added"] == [] and
           hist["steps"][1]["removed"] == [] and
           diff["added"] and diff["removed"],
           "/selection/history at 40%%: step 20 as stored (no change), "
           "where a naive top 40%% would move %d in"
           % len(diff["added"]))
        ok(hist30 is not None and
           hist30["steps"][-1]["version"] == walk["version"] and
           hist30["steps"][-1]["modules"] == sorted(walk["modules"]),
           "/selection/history at 30%%: the walk of /selection (version %s)"
           % (hist30 and hist30["steps"][-1]["version"]))


if __name__ == "__main__":
    main()
    spdtest.finish()
