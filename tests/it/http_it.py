#!/usr/bin/python3
"""Integration tests of the event-driven HTTP server (issue 9): the real
daemon on a loopback port while hundreds of idle sockets, /events streams,
long polls and slow clients are held; the per-address limit; a burst of
rejected connections that must be counted, not logged one by one; long
polls whose client left; a prompt SIGTERM with streams open. Prints TAP. Loopback only, bounded in time.

Standard library only. Usage: http_it.py BUILDDIR
"""
import os
import re
import resource
import shutil
import socket
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
TIMEOUT = 4                         # --http-timeout-s of the daemon


def fixture(path, step, seed=1, extra=()):
    subprocess.run([FIX, "checkpoint", path, "--layers", "4", "--hidden",
                    "48", "--intermediate", "96", "--vocab", "128", "--shards",
                    "2", "--step", str(step), "--seed", str(seed), "-q",
                    *extra], check=True)


def connect(port, src="127.0.0.1"):
    """A TCP connection from src to the daemon, or None when refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


def send_get(s, path, headers=()):
    s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n"
               % (path, "".join("%s: %s\r\n" % h for h in headers))).encode())


def read_all(s, limit=1 << 20):
    """Reads until the peer closes (or the socket times out)."""
    out = b""
    try:
        while len(out) < limit:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    return out


def closed_by_peer(s, wait):
    """True when the server closes s within wait seconds."""
    s.settimeout(wait)
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return True
    except socket.timeout:
        return False
    except OSError:
        return True         # reset


def is_closed(s):
    """True when the server already closed s (does not wait)."""
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def timed_get(d, path):
    """(status, seconds) of one request on a fresh connection."""
    t0 = time.monotonic()
    try:
        st, _, _ = d.get(path, timeout=3)
    except OSError:
        st = None
    return st, time.monotonic() - t0


def metric(d, name):
    """The value of one sample line of /metrics, or None."""
    st, _, body = d.get("/metrics")
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def http_lines(d, after=0):
    """The daemon's log lines from libmicrohttpd or our summary."""
    return [ln for ln in open(d.log_path).read().splitlines()[after:]
            if "http:" in ln]


def test_held(tmp, run, d):
    """(a), (b), (d): held sockets, streams and long polls; slow clients."""
    st, h, _ = d.get("/selection")
    etag = h.get("ETag", "")
    idle = [connect(d.port) for _ in range(300)]
    sse, polls = [], []
    for _ in range(50):
        s = connect(d.port)
        send_get(s, "/events")
        sse.append(s)
        p = connect(d.port)
        send_get(p, "/selection?wait=30", [("If-None-Match", etag)])
        polls.append(p)
    ok(all(idle) and all(sse) and all(polls),
       "300 idle sockets, 50 /events streams, 50 long polls connected")
    heads = [read_all(s, 1) for s in sse[:5]]
    ok(all(b" 200 " in x.split(b"\r\n")[0] for x in heads),
       "the streams got their headers")
    lat = []
    for path in ["/health", "/selection"] * 10:
        st, t = timed_get(d, path)
        lat.append(t if st == 200 else 99)
        if st != 200:
            break
    ok(max(lat) < 0.5, "/health and /selection answer meanwhile: 20 "
       "requests, slowest %.3f s" % max(lat))
    n = metric(d, "spectrumd_http_connections")
    ok(n is not None and n >= 400, "/metrics counts %s open connections" % n)

    # (b) slowloris: a header byte every half second is cut at the deadline.
    slow = [connect(d.port) for _ in range(5)]
    for s in slow:
        s.sendall(b"GET /health HTTP/1.1\r\n")
    req = b"Host: t\r\nX-Pad: " + b"a" * 100
    t0 = time.monotonic()
    cut = [False] * len(slow)
    for i in range(len(req)):
        for j, s in enumerate(slow):
            if cut[j]:
                continue
            try:
                s.send(req[i:i + 1])
            except OSError:
                cut[j] = True
        time.sleep(0.5)
        if all(cut) or time.monotonic() - t0 > TIMEOUT + 6:
            break
    for j, s in enumerate(slow):
        cut[j] = cut[j] or closed_by_peer(s, 0.5)
    took = time.monotonic() - t0
    ok(all(cut) and took < TIMEOUT + 4, "5 slowloris sockets closed by the "
       "server after %.1f s (timeout %d s)" % (took, TIMEOUT))
    ok(all(closed_by_peer(s, 1) for s in idle[:20]),
       "idle sockets closed past the timeout")
    n = metric(d, 'spectrumd_http_rejected_connections_total'
               '{reason="slow_request"}')
    ok(n is not None and n >= 5, "/metrics counts %s slow requests" % n)

    # (d) streams and long polls outlive the timeout and wake on news.
    fixture(os.path.join(run, "checkpoint-20"), 20, seed=1,
            extra=("--drift", "1.5"))
    t0 = time.monotonic()
    end = t0 + 20                   # one deadline for all, bounded
    answers = []
    for p in polls:
        p.settimeout(max(0.1, end - time.monotonic()))
        answers.append(read_all(p))
    took = time.monotonic() - t0
    good = [a for a in answers if a.startswith(b"HTTP/1.1 200")
            and b'"version":2' in a]
    ok(len(good) == 50, "all 50 long polls answered 200 with the new "
       "version (%d) within %.1f s of the checkpoint" % (len(good), took))
    got = []
    end = time.monotonic() + 10
    for s in sse:
        buf = b""
        s.settimeout(max(0.1, end - time.monotonic()))
        try:
            while b"event: selection" not in buf:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
        except OSError:
            pass
        got.append(b"event: selection" in buf and b": keepalive" in buf)
    ok(all(got), "all 50 streams got keepalives and the selection event "
       "(%d)" % sum(got))
    for s in idle + sse + slow:
        if s:
            s.close()


def test_per_ip(tmp, d, per_ip):
    """(c), (e): one address over its limit; the rest are served, the
    rejections counted in /metrics and summed up in one log line."""
    before = len(open(d.log_path).read().splitlines())
    lim0 = metric(d, 'spectrumd_http_rejected_connections_total'
                  '{reason="limit"}') or 0
    held = []
    for _ in range(per_ip + 200):
        s = connect(d.port, "127.0.0.2")
        if s:
            held.append(s)
    time.sleep(0.5)
    refused = sum(1 for s in held if is_closed(s))
    ok(refused == len(held) - per_ip, "127.0.0.2 over its limit of %d: "
       "%d of %d closed at once" % (per_ip, refused, len(held)))
    lat = [timed_get(d, "/health") for _ in range(10)]
    lat = [(st, t if st == 200 else 99) for st, t in lat]
    ok(all(st == 200 for st, _ in lat) and max(t for _, t in lat) < 0.5,
       "127.0.0.1 still served (slowest %.3f s)" % max(t for _, t in lat))
    n = metric(d, 'spectrumd_http_rejected_connections_total'
               '{reason="limit"}')
    ok(n is not None and n - lim0 >= 190, "/metrics counts %s rejections "
       "over the limit" % n)
    summary = wait_for(lambda: [ln for ln in http_lines(d, before)
                                if "turned away" in ln], timeout=15)
    lines = http_lines(d, before)
    if not ok(summary and len(lines) <= 3, "the burst gave %d log lines, "
              "a summary among them: %s" % (len(lines),
                                            (summary or ["none"])[0])):
        print("# " + "\n# ".join(lines))
    for s in held:
        s.close()


def test_gone(d):
    """Long polls whose client leaves free their slot within seconds, not
    at their deadline (a suspended socket is not watched)."""
    st, h, _ = d.get("/selection")
    wait_for(lambda: (metric(d, "spectrumd_http_connections") or 99) <= 2,
             timeout=15)            # the earlier tests' sockets are gone
    n0 = metric(d, "spectrumd_http_connections") or 0
    polls = []
    for _ in range(30):
        p = connect(d.port)
        send_get(p, "/selection?wait=120", [("If-None-Match", h["ETag"])])
        polls.append(p)
    # 30 polls + the /metrics request (n0 may still count a socket of an
    # earlier test that closes meanwhile)
    held = wait_for(lambda: (metric(d, "spectrumd_http_connections") or 0)
                    >= 31, timeout=15)
    for p in polls:
        p.close()
    t0 = time.monotonic()
    freed = wait_for(lambda: (metric(d, "spectrumd_http_connections") or 99)
                     <= n0 + 1, timeout=15)
    ok(held and freed, "30 long polls whose clients left freed their "
       "connections after %.1f s%s" % (time.monotonic() - t0, "" if held
                                       else " (never saw all 30 held)"))


def test_sigterm(d):
    """Streams and long polls held: SIGTERM still exits 0 at once."""
    st, h, _ = d.get("/selection")
    held = []
    for _ in range(20):
        s = connect(d.port)
        send_get(s, "/events")
        p = connect(d.port)
        send_get(p, "/selection?wait=60", [("If-None-Match", h["ETag"])])
        held += [s, p]
    time.sleep(0.5)
    t0 = time.monotonic()
    code = d.stop()
    took = time.monotonic() - t0
    ok(code == 0 and took < 3, "SIGTERM with 20 streams and 20 long polls: "
       "exit %d in %.2f s" % (code, took))
    for s in held:
        s.close()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)),
                                                hard))
    tmp = tempfile.mkdtemp(prefix="spd-http.")
    d = None
    try:
        run = os.path.join(tmp, "run")
        os.makedirs(run)
        fixture(os.path.join(run, "checkpoint-10"), 10)
        per_ip = 450
        # Alerts off: the streams below expect checkpoint, progress and
        # selection events only, and a client closing on an unread alert
        # event would add the server's send errors to the lines counted.
        d = spdtest.Daemon(SPD, tmp, run, extra=(
            "--alert-jump-factor", "0", "--alert-churn-min", "0",
            "--http-timeout-s", str(TIMEOUT),
            "--http-per-ip-connections", str(per_ip),
            "--http-max-connections", "2000", "--http-threads", "2"))
        if not ok(d.port is not None, "daemon starts"):
            print(open(d.log_path).read())
            return
        ok(wait_for(lambda: d.obj("/selection"), timeout=30),
           "a first selection")
        test_held(tmp, run, d)
        test_per_ip(tmp, d, per_ip)
        test_gone(d)
        test_sigterm(d)
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    spdtest.finish()


if __name__ == "__main__":
    main()
