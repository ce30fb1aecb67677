#!/usr/bin/env python3
"""Hostile clients for tests/bench/load_selection.sh (not a test): holds
idle connections, /events streams, long polls and slowloris connections
against a spectrumd on 127.0.0.1, from other loopback addresses, and opens
again (after --retry s) whatever the server closes or refuses. One
process, non-blocking sockets on epoll. Prints a status line to stderr
every 5 s and a last one on SIGTERM/SIGINT or after --duration.

  hostile.py PORT [--idle N] [--sse N] [--poll N] [--slow N] [--etag E]
             [--sources 127.0.0.2-9] [--retry S] [--duration S]
"""
import argparse
import errno
import random
import selectors
import signal
import socket
import sys
import time

KINDS = ("idle", "sse", "poll", "slow")


class Conn:
    __slots__ = ("kind", "src", "sock", "state", "due", "sent")

    def __init__(self, kind, src):
        self.kind, self.src = kind, src
        self.sock, self.state, self.due, self.sent = None, "wait", 0.0, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--sse", type=int, default=1000)
    ap.add_argument("--poll", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=256)
    ap.add_argument("--etag", default='"x"')
    ap.add_argument("--sources", default="127.0.0.2-9")
    ap.add_argument("--retry", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=3600)
    a = ap.parse_args()
    base, _, hi = a.sources.partition("-")
    pre, _, lo = base.rpartition(".")
    srcs = ["%s.%d" % (pre, i) for i in range(int(lo), int(hi or lo) + 1)]
    reqs = {
        "sse": b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n",
        "poll": ("GET /selection?wait=300 HTTP/1.1\r\nHost: h\r\n"
                 "If-None-Match: %s\r\n\r\n" % a.etag).encode(),
        "slow": b"GET /health HTTP/1.1\r\n",
    }
    conns = []
    for kind in KINDS:
        for i in range(getattr(a, kind)):
            conns.append(Conn(kind, srcs[len(conns) % len(srcs)]))
    random.Random(1).shuffle(conns)     # kinds interleaved, as they arrive
    sel = selectors.DefaultSelector()
    st = {"opened": 0, "closed": 0, "refused": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def drop(c, now, refused=False):
        if c.sock is not None:
            try:
                sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
        st["refused" if refused else "closed"] += 1
        c.sock, c.state, c.due = None, "wait", now + a.retry

    def start(c, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((c.src, 0))
            s.connect_ex(("127.0.0.1", a.port))
        except OSError:
            s.close()
            c.due = now + a.retry
            st["refused"] += 1
            return
        c.sock, c.state, c.sent = s, "connecting", 0
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ, c)

    def report(final=False):
        n = {k: 0 for k in KINDS}
        for c in conns:
            if c.state == "open":
                n[c.kind] += 1
        print("hostile%s: open idle %d, sse %d, poll %d, slow %d; opened "
              "%d, closed by server %d, refused %d" % (
                  " (last)" if final else "", n["idle"], n["sse"], n["poll"],
                  n["slow"], st["opened"], st["closed"], st["refused"]),
              file=sys.stderr, flush=True)

    t_end = time.monotonic() + a.duration
    next_report = time.monotonic() + 5
    next_slow = time.monotonic() + 1
    while not stop and time.monotonic() < t_end:
        now = time.monotonic()
        budget = 2000           # connects per round, so the loop stays live
        for c in conns:
            if budget == 0:
                break
            if c.state == "wait" and c.due <= now:
                start(c, now)
                budget -= 1
        for key, ev in sel.select(timeout=0.2):
            c = key.data
            if c.state == "connecting" and ev & selectors.EVENT_WRITE:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    drop(c, now, refused=True)
                    continue
                c.state = "open"
                st["opened"] += 1
                sel.modify(c.sock, selectors.EVENT_READ, c)
                if c.kind in reqs:
                    try:
                        c.sock.send(reqs[c.kind])
                    except OSError:
                        drop(c, now)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    drop(c, now, refused=c.state == "connecting")
                elif c.kind == "poll":
                    c.sock.send(reqs["poll"])    # answered: poll again
        now = time.monotonic()
        if now >= next_slow:
            next_slow = now + 1
            for c in conns:
                if c.kind == "slow" and c.state == "open":
                    try:
                        c.sock.send(b"X-a: b\r\n"[c.sent % 8:c.sent % 8 + 1])
                        c.sent += 1
                    except OSError as e:
                        if e.errno != errno.EAGAIN:
                            drop(c, now)
        if now >= next_report:
            next_report = now + 5
            report()
    report(final=True)
    for c in conns:
        if c.sock is not None:
            c.sock.close()


if __name__ == "__main__":
    main()
