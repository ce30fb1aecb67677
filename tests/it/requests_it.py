#!/usr/bin/python3
"""Integration tests: hostile requests against the real daemon. A regex
that overflowed glibc's matcher, patterns that backtrack for ever, bearer
tokens of any length, and bytes that are not UTF-8 in the query: each gets
a clear JSON answer and the daemon keeps serving. Prints TAP.

Standard library only. Usage: requests_it.py BUILDDIR
"""
import http.client
import json
import os
import random
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
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
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


def routes_of_api():
    """The (method, path) pairs of src/api.c's route table."""
    text = open(os.path.join(SRC, "src", "api.c")).read()
    return re.findall(r'\{\s*"(GET|POST)",\s*"(/[^"]*)"', text)


SURFACE_KEYS = ["run", "run2", "step", "from", "to", "top_percent",
                "format", "match", "type", "metric", "max_points", "matrix",
                "since", "limit", "include_embeddings", "names", "", "run[]"]
SURFACE_VALUES = [
    "", "0", "1", "-1", "100", "101", "latest", "2147483648",
    "99999999999999999999", "-9223372036854775809", "1e309", "nan", "inf",
    "-0", "0x10", " 1", "1.5", "true", "false", "json", "yaml", "regex",
    "csv", "snr", "alpha", "loss", "eval_loss", "checkpoint-1", "run",
    "model.layers.0.self_attn.q_proj", "model.embed_tokens.weight", "..",
    "../../etc/passwd", "%", "%zz", "%00", "\u00e9", "\ufffd", "[", "(a+)+$",
    "a" * 3000]


def test_surface(d, n=1500, seed=None):
    """A seeded fuzzer over the request surface: every route of the route
    table (and near misses), every method, random combinations of known
    and unknown parameters with hostile values, raw bad escapes and odd
    If-None-Match headers. Each answer is a 2xx/3xx whose JSON parses, or
    a 4xx/503 with a strict-JSON error body; never another 5xx, never a
    dropped connection; the daemon serves after."""
    seed = int(os.environ.get("SPD_FUZZ_SEED", seed or time.time()))
    rnd = random.Random(seed)
    # /events streams until the client leaves: http_it.py tests it.
    paths = sorted({p for _, p in routes_of_api()} - {"/events"})
    paths += ["/", "/index.html", "/app.js", "/nope", "//selection",
              "/selection/", "/selection%00", "/../README.md"]
    bad = []
    for _ in range(n):
        path = rnd.choice(paths)
        q = []
        for _ in range(rnd.randint(0, 5)):
            k, v = rnd.choice(SURFACE_KEYS), rnd.choice(SURFACE_VALUES)
            safe = "%[]()+$/:" if rnd.random() < 0.3 else ""
            q.append(urllib.parse.quote(k, safe=safe) + "=" +
                     urllib.parse.quote(v, safe=safe))
        url = path + ("?" + "&".join(q) if q else "")
        method = rnd.choice(["GET", "GET", "GET", "HEAD", "POST", "PUT",
                             "DELETE", "OPTIONS"])
        headers = {}
        if rnd.random() < 0.2:
            headers["If-None-Match"] = rnd.choice(
                ['"x"', "*", '"1-25-1"', 'W/"1"', '"' * 300])
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            c.request(method, url, headers=headers)
            r = c.getresponse()
            st, ctype, body = r.status, r.getheader("Content-Type", ""), \
                r.read()
        except (OSError, http.client.HTTPException) as e:
            bad.append("%s %s: %r" % (method, url[:120], e))
            continue
        finally:
            c.close()
        why = None
        if st >= 500 and st != 503:
            why = "status %d" % st
        elif st >= 400 and method != "HEAD":
            try:
                e = json.loads(body.decode("utf-8"))["error"]
                if not (isinstance(e["code"], str) and
                        isinstance(e["message"], str)):
                    why = "error body without code and message"
            except (UnicodeDecodeError, ValueError, KeyError, TypeError):
                why = "error body not strict JSON: %r" % body[:80]
        elif st == 200 and method == "GET" and "json" in ctype:
            try:
                json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                why = "200 body not strict JSON: %r" % body[:80]
        if why:
            bad.append("%s %s: %s" % (method, url[:120], why))
    ok(not bad and alive(d),
       "request surface, %d requests over %d routes (SPD_FUZZ_SEED=%d): "
       "%d bad %s" % (n, len(paths), seed, len(bad), bad[:3]))


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
            test_surface(d)
            test_port_in_use(tmp, d)
        finally:
            ok(d.stop() == 0, "daemon exits 0 on SIGTERM")
        test_log_prefix(tmp, d)


if __name__ == "__main__":
    main()
    spdtest.finish()
