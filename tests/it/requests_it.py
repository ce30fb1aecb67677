#!/usr/bin/python3
"""Integration tests: hostile requests against the real daemon. A regex
that overflowed glibc's matcher, patterns that backtrack for ever, bearer
tokens of any length, and bytes that are not UTF-8 in the query: each gets
a clear JSON answer and the daemon keeps serving. Prints TAP.

Standard library only. Usage: requests_it.py BUILDDIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SPD = os.path.join(BUILD, "spectrumd")
FIX = os.path.join(BUILD, "tests", "spectrumd-fixture")


def alive(d):
    st, v, _ = d.json("/health")
    return st == 200 and d.p.poll() is None


def error_of(d, path, **kw):
    """(status, error code, message, seconds) of a request that must fail
    with a strict-JSON error body that is valid UTF-8."""
    t0 = time.monotonic()
    st, _, body = d.get(path, **kw)
    dt = time.monotonic() - t0
    try:
        text = body.decode("utf-8")          # strict: raises on bad bytes
        v = json.loads(text)
        e = v["error"]
        return st, e["code"], e["message"], dt
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as ex:
        return st, None, "bad body %r (%s)" % (body[:80], ex), dt


def test_regex(d):
    hostile = [
        "(.*){1,255}{1,255}x",            # crashed glibc regcomp (SIGSEGV)
        "a{1,32767}",                     # held a core for 21 s
        "(a|aa)*(a|aa)*(a|aa)*(a|aa)*$b",  # exponential backtracking
        "((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))",
        "(?:x+x+)+y",
        "x" * 600,                        # over the pattern length cap
        "(",                              # syntax error
        "\udcff",                         # not UTF-8 (sent as %ff)
    ]
    for pat in hostile:
        raw = pat.encode("utf-8", "surrogateescape")
        q = urllib.parse.quote_from_bytes(raw, safe="")
        st, code, msg, dt = error_of(d, "/history?metric=snr&match=" + q)
        good = st in (200, 400) and (st == 200 or code == "bad_request")
        ok(good and dt < 2.0 and alive(d),
           "match=%r: %d %s in %.3f s, daemon alive (%s)"
           % (pat[:40], st, code, dt, msg[:80]))
    st, code, msg, _ = error_of(d, "/history?match=" + "x" * 600)
    ok(st == 400 and "512" in msg, "pattern length cap named: " + msg)
    st, code, msg, _ = error_of(d, "/history?match=%28")
    ok(st == 400 and "match" in msg, "syntax error named: " + msg)
    # A pattern that backtracks hard on every module name is stopped by
    # the CPU or step limit, with a 400 naming it, well inside 100 ms of
    # matching per request (the rest is the round trip).
    # (2^30 ways to split a 30-byte module name, none of which matches).
    q = urllib.parse.quote("^([\\w.]|[\\w.])*[^\\w.]", safe="")
    st, code, msg, dt = error_of(d, "/history?match=" + q)
    ok(st == 400 and "simplify" in msg and dt < 1.0,
       "backtracking pattern stopped in %.3f s: %d %s" % (dt, st, msg[:80]))
    # Plain patterns still work (PCRE2 syntax, as the dashboard sends).
    st, _, body = d.get("/history?metric=snr&match=" +
                        urllib.parse.quote(r"q_proj$"))
    v = json.loads(body) if st == 200 else {}
    names = [s.get("module", "") for s in v.get("series", [])]
    ok(st == 200 and names and all(n.endswith("q_proj") for n in names),
       "match=q_proj$ selects only q_proj series (%d)" % len(names))


def test_token(d, token):
    def post(tok):
        h = {"Authorization": "Bearer " + tok} if tok is not None else {}
        st, _, _ = d.get("/rescan", headers=h, method="POST")
        return st
    ok(post(token) == 202, "the exact %d-byte token is accepted"
       % len(token))
    ok(post(token + "junk") == 401, "token plus junk is refused")
    ok(post(token[:-1]) == 401, "a prefix of the token is refused")
    ok(post(token[:4096]) == 401, "its first 4096 bytes are refused")
    ok(post(token[:-1] + "y") == 401, "the last byte changed is refused")
    ok(post(None) == 401, "no token is refused")


def test_utf8(d):
    for q in ["/selection?run=%ff%fe", "/snr?run=%c3%28", "/history?run=%ed%a0%80",
              "/checkpoints?run=a%f4%90%80%80b", "/nope%ff"]:
        st, code, msg, _ = error_of(d, q)
        ok(st >= 400 and code is not None,
           "%s: %d with valid UTF-8 JSON (%s)" % (q, st, msg[:60]))


def test_metrics_lint(d):
    """/metrics passes `promtool check metrics` (Debian's prometheus)."""
    import shutil
    promtool = shutil.which("promtool")
    if promtool is None:
        ok(True, "# SKIP promtool missing (Debian package prometheus)")
        return
    st, _, body = d.get("/metrics")
    r = subprocess.run([promtool, "check", "metrics"], input=body,
                       capture_output=True)
    out = (r.stdout + r.stderr).decode(errors="replace").strip()
    ok(st == 200 and r.returncode == 0 and out == "",
       "promtool check metrics: exit %d %s" % (r.returncode, out[:300]))


def test_alpha(d):
    """The heavy-tail metrics are served per matrix and over time."""
    st, v, _ = d.json("/snr")
    mats = v.get("matrices", []) if st == 200 else []
    fitted = [m for m in mats if m.get("alpha_status") == "ok"]
    ok(fitted and all(isinstance(m["alpha"], float) and m["alpha"] > 1 and
                      0 <= m["ks"] <= 1 and m["n_tail"] >= 2 and
                      abs(m["alpha_weighted"] - m["alpha"] *
                          m["log_spectral_norm"]) < 1e-9 * abs(
                              m["alpha_weighted"]) + 1e-12
                      for m in fitted),
       "/snr: alpha, ks, n_tail, alpha_weighted = alpha * log_spectral_norm "
       "for %d of %d matrices" % (len(fitted), len(mats)))
    st, h, _ = d.json("/history?metric=alpha")
    ok(st == 200 and h["metric"] == "alpha" and len(h["series"]) ==
       len(fitted), "/history?metric=alpha: one series per fitted matrix")


def test_port_in_use(tmp, d):
    """A port in use: exit 1 with one message that says so, no MHD noise."""
    p = subprocess.run([SPD, "--listen", "127.0.0.1:%d" % d.port, "--db",
                        os.path.join(tmp, "other.db"), "--backend", "cpu"],
                       capture_output=True, text=True, timeout=30)
    bad = [ln for ln in p.stderr.splitlines() if ln.startswith(("error",
                                                                "warning"))]
    ok(p.returncode == 1 and len(bad) == 1 and
       "Address already in use" in bad[0] and "port 0" not in p.stderr,
       "port in use: exit %d, %r" % (p.returncode, bad))


def test_log_prefix(tmp, d):
    """journald's <N> prefixes only when stderr is the journal stream."""
    plain = open(d.log_path).read()
    ok(plain and not re.search(r"^<\d>", plain, re.M),
       "a log that is not the journal has no <N> prefixes")
    path = os.path.join(tmp, "journal.log")
    with open(path, "w") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        p = subprocess.Popen([SPD, "--listen", "127.0.0.1:0", "--db",
                              os.path.join(tmp, "j.db"), "--backend", "cpu"],
                             stdout=f, stderr=f, env=env)
        wait_for(lambda: "listening" in open(path).read(), timeout=10)
        p.terminate()
        p.wait(timeout=15)
    text = open(path).read()
    ok(re.search(r"^<6>spectrumd .* listening on", text, re.M) is not None,
       "under the journal each line starts with <N>: %r" % text[:60])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        os.makedirs(run)
        subprocess.run([FIX, "checkpoint", os.path.join(run, "checkpoint-1"),
                        "--layers", "4", "--hidden", "48", "--intermediate",
                        "96", "--vocab", "128", "--step", "1", "-q"],
                       check=True)
        token = "t" * 4095 + "Z" * 905        # 5000 bytes
        d = spdtest.Daemon(SPD, tmp, run, extra=("--api-token", token))
        try:
            if not ok(d.port is not None, "daemon starts"):
                print(open(d.log_path).read())
                return
            wait_for(lambda: (d.obj("/checkpoints") or [{}])[0]
                     .get("status") == "done", timeout=30)
            test_regex(d)
            test_token(d, token)
            test_utf8(d)
            test_metrics_lint(d)
            test_alpha(d)
            test_port_in_use(tmp, d)
        finally:
            ok(d.stop() == 0, "daemon exits 0 on SIGTERM")
        test_log_prefix(tmp, d)


if __name__ == "__main__":
    main()
    spdtest.finish()
