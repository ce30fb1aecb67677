#!/usr/bin/env python3
"""Client for spectrumd's unfreeze set (GET /selection), standard library only.

    from spectrum_client import SpectrumClient, apply
    c = SpectrumClient("http://127.0.0.1:8420", run="demo")
    sel = c.selection()              # dict, or None when unchanged/none yet
    names = apply(model.named_parameters(), c.current)

SpectrumClient remembers the ETag of the last selection it got and sends it
as If-None-Match, so selection() returns None (HTTP 304) while the set is
unchanged; selection(wait=S) long-polls up to S seconds for a newer one.
poll_forever() loops on that, backing off on connection errors.
lr_scales() and snr() fetch /lr_scales and /snr of the same run (get() any
other route); scales_for() turns /lr_scales' per-module multipliers into
per-parameter ones.

matches()/apply() follow Axolotl's `unfrozen_parameters` semantics exactly
(axolotl/utils/freeze.py): each pattern may end in a row range `[a:b]`
(`[a]`, `[:b]`, `[a:]`), which is stripped; every '.' not followed by '+'
becomes a literal '\\.'; the result is tried with Python re.match, i.e.
anchored at the start only (a PREFIX match). So the bare module name
`model.layers.1.mlp.down_proj` also unfreezes its `.bias`, and
`model.layers.1.` does not match `model.layers.10.`.

Note that a pattern that already escapes its dots (`^a\\.weight$`, the
daemon's `format=regex` output) matches nothing under these rules, because
the '.' becomes '\\.' after the backslash; feed Axolotl the `patterns` of
the JSON (or `format=yaml`), never the regex format.

CLI: spectrum_client.py URL [--run R] [--top-percent P] [--watch]
"""

import argparse
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["SpectrumClient", "SpectrumError", "matches", "apply",
           "parse_pattern", "compile_pattern", "scales_for"]

MAX_WAIT = 300          # the daemon refuses longer long polls (API_MAX_WAIT)
_RANGE = re.compile(r"^(.+)\[([0-9]*)(?::([0-9]*))?\]$")
_DOT = re.compile(r"\.(?!\+)")


class SpectrumError(Exception):
    """An HTTP error answer of the daemon: status, code and message."""

    def __init__(self, status, code, message):
        super().__init__("HTTP %d %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message


def parse_pattern(pattern):
    """Splits an Axolotl pattern into (name regex source, row range).

    The range is None, (i, i + 1) for `[i]`, or (start, end) with end None
    meaning "to the last row". The regex source has its dots made literal.
    Raises ValueError for a range whose end is not after its start, as
    Axolotl does.
    """
    m = _RANGE.match(pattern)
    rng = None
    if m:
        pattern, start, end = m.groups()
        if end is None and start.isdecimal():
            rng = (int(start), int(start) + 1)
        else:
            a = int(start) if start else 0
            b = int(end) if end else None
            if b is not None and a >= b:
                raise ValueError("invalid range in pattern %r" % pattern)
            rng = (a, b)
    return _DOT.sub(r"\\.", pattern), rng


_cache = {}


def compile_pattern(pattern):
    """The compiled name regex of an Axolotl pattern (cached)."""
    rx = _cache.get(pattern)
    if rx is None:
        if len(_cache) > 4096:
            _cache.clear()
        rx = _cache[pattern] = re.compile(parse_pattern(pattern)[0])
    return rx


def matches(param_name, patterns):
    """True when any pattern matches param_name the way Axolotl decides
    which parameter to unfreeze (re.match prefix semantics, literal dots,
    [a:b] suffix ignored for the decision). patterns may be one string."""
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(compile_pattern(p).match(param_name) is not None
               for p in patterns)


def _patterns_of(selection):
    if selection is None:
        return []
    if isinstance(selection, dict):
        return selection.get("patterns") or []
    if isinstance(selection, str):
        return [selection]
    return list(selection)


def apply(named_parameters, selection):
    """The names in named_parameters to unfreeze under selection.

    named_parameters: an iterable of names or of (name, parameter) pairs
    (model.named_parameters()). selection: a /selection dict (its
    "patterns" are used), or a list of patterns. Returns the matching
    names in the order given; everything else is meant to be frozen.
    """
    pats = _patterns_of(selection)
    out = []
    for item in named_parameters:
        name = item if isinstance(item, str) else item[0]
        if matches(name, pats):
            out.append(name)
    return out


def _error_of(e):
    """The SpectrumError of an urllib HTTPError (its JSON error body's code
    and message when it has one); closes e."""
    try:
        raw = e.read()
    finally:
        e.close()
    code, msg = "http_%d" % e.code, e.reason
    try:
        err = json.loads(raw)["error"]
        code, msg = err["code"], err["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return SpectrumError(e.code, code, msg)


def scales_for(named_parameters, lr_scales):
    """{parameter name: multiplier} for the names in named_parameters
    (names or (name, parameter) pairs) that belong to a module of
    lr_scales (a /lr_scales answer, or its "scales" dict): the module's
    own parameters (module + ".weight", ".bias", ...). Names of no listed
    module are left out (multiplier 1)."""
    sc = lr_scales.get("scales", lr_scales) if isinstance(
        lr_scales, dict) else {}
    out = {}
    for item in named_parameters:
        name = item if isinstance(item, str) else item[0]
        mod = name.rsplit(".", 1)[0]
        if mod in sc:
            out[name] = float(sc[mod])
    return out


class SpectrumClient:
    """One run's selection on one spectrumd.

    base_url: "http://host:port"; run: the run name (None when the daemon
    has one run); top_percent: None for the daemon's configured value;
    token: sent as a bearer token. Not thread-safe: use one per thread.
    """

    def __init__(self, base_url, run=None, top_percent=None, token=None,
                 timeout=10.0):
        self.base_url = base_url.rstrip("/")
        self.run = run
        self.top_percent = top_percent
        self.token = token
        self.timeout = timeout
        self.etag = None
        self.current = None     # the last selection dict received

    def _url(self, wait):
        return self.base_url + "/selection" + self._query(
            (("wait", str(wait)),) if wait else ())

    def _headers(self):
        h = {"Accept": "application/json"}
        if self.token is not None:
            h["Authorization"] = "Bearer " + self.token
        return h

    def _query(self, extra=()):
        q = []
        if self.run is not None:
            q.append(("run", self.run))
        if self.top_percent is not None:
            q.append(("top_percent", str(self.top_percent)))
        q += list(extra)
        return "?" + urllib.parse.urlencode(q) if q else ""

    def selection(self, wait=0):
        """Fetches the selection if it changed since the last call.

        Returns the new selection dict (also kept in .current), or None
        when it is unchanged (304) or the run has no selection yet (404
        no_selection). wait > 0 long-polls up to that many seconds
        (clamped to MAX_WAIT) for a newer version. Raises SpectrumError for
        other HTTP errors and OSError (urllib.error.URLError, timeouts)
        when the daemon cannot be reached.
        """
        wait = max(0, min(int(wait), MAX_WAIT))
        headers = self._headers()
        if self.etag is not None:
            headers["If-None-Match"] = self.etag
        req = urllib.request.Request(self._url(wait), headers=headers)
        try:
            with urllib.request.urlopen(
                    req, timeout=self.timeout + wait) as r:
                body = r.read()
                etag = r.headers.get("ETag")
        except urllib.error.HTTPError as e:
            if e.code == 304:
                e.close()
                return None
            err = _error_of(e)
            if err.status == 404 and err.code == "no_selection":
                return None
            raise err from None
        sel = json.loads(body)
        self.etag = etag
        self.current = sel
        return sel

    def get(self, path, params=()):
        """The parsed JSON of GET path?run&top_percent&params (a list of
        (key, value)). Raises SpectrumError on an HTTP error answer and
        OSError when the daemon cannot be reached."""
        req = urllib.request.Request(self.base_url + path +
                                     self._query(params),
                                     headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise _error_of(e) from None

    def lr_scales(self):
        """GET /lr_scales: {run, step, version, top_percent, lr_scale_max,
        scales: {module: multiplier}} of the current selection."""
        return self.get("/lr_scales")

    def snr(self, step=None):
        """GET /snr of the run at step (default: the latest analysed)."""
        return self.get("/snr", () if step is None else
                        (("step", str(step)),))

    def poll_forever(self, callback, wait=30, stop=None, min_backoff=1.0,
                     max_backoff=60.0, on_error=None):
        """Calls callback(selection) for the current selection and then
        for every new version, long-polling wait seconds at a time.

        Connection errors and 5xx answers are retried after a delay that
        doubles from min_backoff up to max_backoff and resets after a
        success; on_error(exc, delay), when given, sees each one first.
        Other HTTP errors (a bad run or top_percent) are raised. stop, a
        threading.Event, ends the loop (also during a backoff sleep).
        """
        stop = stop if stop is not None else threading.Event()
        delay = min_backoff
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                sel = self.selection(wait=wait)
            except SpectrumError as e:
                if e.status < 500:
                    raise
                err = e
            except (OSError, ValueError) as e:  # URLError, timeouts, bad JSON
                err = e
            else:
                delay = min_backoff
                if sel is not None:
                    callback(sel)
                elif time.monotonic() - t0 < 1.0:
                    stop.wait(1.0)      # no long poll: do not spin
                continue
            if on_error is not None:
                on_error(err, delay)
            stop.wait(delay)
            delay = min(delay * 2, max_backoff)


def _print(sel, fmt, out):
    if fmt == "json":
        json.dump(sel, out, indent=2)
        out.write("\n")
    elif fmt == "patterns":
        for p in sel["patterns"]:
            out.write(p + "\n")
    elif fmt == "yaml":
        out.write("unfrozen_parameters:\n")
        for p in sel["patterns"]:
            out.write("- " + p + "\n")
    else:
        for p in sel["parameters"]:
            out.write(p + "\n")
    out.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Print spectrumd's current unfreeze set.")
    ap.add_argument("url", help="daemon base URL, e.g. http://127.0.0.1:8420")
    ap.add_argument("--run", help="run name (optional with one run)")
    ap.add_argument("--top-percent", type=int, help="per-type percentage")
    ap.add_argument("--token", help="bearer token")
    ap.add_argument("--format", default="params",
                    choices=("params", "patterns", "yaml", "json"),
                    help="parameter names (default), Axolotl patterns, "
                    "an unfrozen_parameters: YAML list, or the JSON")
    ap.add_argument("--watch", action="store_true",
                    help="keep running; print each new version")
    ap.add_argument("--wait", type=int, default=30,
                    help="long-poll seconds with --watch (default 30)")
    a = ap.parse_args(argv)
    c = SpectrumClient(a.url, a.run, a.top_percent, a.token)

    def show(sel):
        print("# run %s step %s version %s top_percent %s: %d parameters" %
              (sel.get("run"), sel.get("step"), sel.get("version"),
               sel.get("top_percent"), len(sel.get("parameters", []))),
              file=sys.stderr, flush=True)
        _print(sel, a.format, sys.stdout)

    try:
        if a.watch:
            c.poll_forever(show, wait=a.wait, on_error=lambda e, d: print(
                "spectrum_client: %s; retrying in %.0f s" % (e, d),
                file=sys.stderr, flush=True))
            return 0
        sel = c.selection()
    except SpectrumError as e:
        print("spectrum_client: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("spectrum_client: %s: %s" % (a.url, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if sel is None:
        print("spectrum_client: no selection yet", file=sys.stderr)
        return 3
    show(sel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
