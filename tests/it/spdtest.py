"""Shared pieces of the integration tests: TAP output, polling, and the
real spectrumd daemon on a loopback port with a temporary database.
Standard library only."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

_n = 0
_failed = 0


def ok(cond, what):
    """Prints one TAP line; returns cond."""
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (_n, what), flush=True)
    return cond


def finish():
    """Prints the plan and exits 0, or 1 when a check failed."""
    print("1..%d" % _n)
    sys.exit(1 if _failed else 0)


def wait_for(cond, timeout=30, every=0.1):
    """Polls cond() until it is true (returned) or timeout s pass (None)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(every)
    return None


class Daemon:
    """One spectrumd process watching run_dir (as run "demo") on an
    ephemeral port; its log goes to a file the port is read from."""

    def __init__(self, spd, tmp, run_dir, extra=()):
        self.log_path = os.path.join(tmp, "daemon-%d.log" % time.monotonic_ns())
        self.log = open(self.log_path, "w")
        watch = ["--watch", "demo=" + run_dir] if run_dir else []
        args = [spd, *watch, "--listen", "127.0.0.1:0",
                "--db", os.path.join(tmp, "spectrumd.db"), "--settle-ms", "200",
                "--backend", "cpu", "--threads", "1", "--web-dir",
                os.path.join(tmp, "no-web"), *extra]
        self.p = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        self.port = None
        deadline = time.time() + 10
        while time.time() < deadline and self.port is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/",
                          open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            elif self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.base = "http://127.0.0.1:%d" % (self.port or 0)

    def url(self, path):
        return self.base + path

    def get(self, path, headers=None, method="GET", timeout=30):
        """(status, headers, body bytes) of one request."""
        req = urllib.request.Request(self.url(path), headers=headers or {},
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path, **kw):
        """(status, parsed body or None, headers)."""
        st, h, body = self.get(path, **kw)
        return st, (json.loads(body) if body else None), h

    def obj(self, path):
        """The parsed body of a 2xx answer, else None (also when down)."""
        try:
            st, v, _ = self.json(path)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return v if 200 <= st < 300 else None

    def stop(self, sig=signal.SIGTERM):
        """Signals the daemon and returns its exit status."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()
        finally:
            self.log.close()
