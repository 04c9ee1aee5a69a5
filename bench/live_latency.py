#!/usr/bin/env python3
"""Latency of the live log stream: from the ingest POST of a line to its
arrival on a Server-Sent Events client (GET /api/v1/logs/stream).

Starts a real xluo-server on loopback (temporary prefix, random port),
registers an agent, opens --subscribers stream clients (all read on one
thread with select), then POSTs --lines batches of one line each, one after
the other, and notes for each line when the POST started, when it was
answered (the line is durable) and when it reached the first client.

    python3 bench/live_latency.py [--build build] [--lines 1000]
                                  [--subscribers 1] [--sync always|none]

Prints p50/p90/p99/max of POST->SSE, POST round trip and answer->SSE, in ms.
Python standard library only.
"""
import argparse
import hashlib
import json
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

AID = "0123456789abcdef0123456789abcdef"


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Stream:
    """A raw SSE client that records when each `lat N` line arrives."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(("GET /api/v1/logs/stream HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: Bearer {harness.API_TOKEN}\r\n\r\n").encode())
        self.buf = b""
        self.head = None
        self.body = b""
        self.seen = {}

    def feed(self, data, now):
        self.buf += data
        if self.head is None:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head, self.buf = self.buf[:i], self.buf[i + 4:]
        # Undo the chunked encoding, then take the complete lines.
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                break
            size = int(self.buf[:i], 16)
            if len(self.buf) < i + 2 + size + 2:
                break
            self.body += self.buf[i + 2:i + 2 + size]
            self.buf = self.buf[i + 2 + size + 2:]
        while True:
            i = self.body.find(b"\n")
            if i < 0:
                return
            line, self.body = self.body[:i], self.body[i + 1:]
            if line.startswith(b"data: {"):
                row = json.loads(line[6:])
                if row["line"].startswith("lat "):
                    self.seen[int(row["line"][4:])] = now


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--subscribers", type=int, default=1)
    ap.add_argument("--sync", default="always", choices=["always", "none"])
    args = ap.parse_args()
    harness.BIN = os.path.abspath(args.build)

    tmp = tempfile.mkdtemp(prefix="xluo-bench-live-")
    srv = harness.Server(os.path.join(tmp, "server"),
                         f"store:\n  sync: {args.sync}\n")
    srv.start_fg()
    streams = []
    try:
        status, body = harness.http("PUT", f"{srv.url}/api/v1/agents/{AID}",
                                    token=harness.AGENT_TOKEN,
                                    body={"v": 1, "agent_id": AID, "host": "bench",
                                          "heartbeat_interval_ms": 10000})
        assert status == 200, body
        streams = [Stream(srv.port) for _ in range(args.subscribers)]
        stop = threading.Event()

        def reader():
            socks = {s.sock: s for s in streams}
            while not stop.is_set():
                r, _, _ = select.select(list(socks), [], [], 0.1)
                now = time.perf_counter()
                for sk in r:
                    data = sk.recv(1 << 16)
                    if data:
                        socks[sk].feed(data, now)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        harness.wait_for(lambda: harness.http("GET", srv.url + "/metrics")[1].count(
            f"xluo_live_subscribers {args.subscribers}\n"), 10, "the subscribers")

        # One connection for every POST, as an agent keeps one.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        sent, acked = {}, {}
        file_id = hashlib.sha1(b"/var/log/bench.log").hexdigest()[:16]
        off = 0
        for i in range(args.lines):
            text = f"lat {i}"
            ts = int(time.time() * 1000)
            body = json.dumps({"v": 1, "agent_id": AID, "seq": i + 1, "sent": ts,
                               "records": [{"type": "log", "ts": ts, "input": "bench",
                                            "file": "/var/log/bench.log", "file_id": file_id,
                                            "lines": [{"o": off, "e": off + len(text) + 1,
                                                       "t": text}]}]}).encode()
            off += len(text) + 1
            sent[i] = time.perf_counter()
            conn.request("POST", "/api/v1/ingest", body,
                         {"Authorization": f"Bearer {harness.AGENT_TOKEN}",
                          "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            acked[i] = time.perf_counter()
            assert r.status == 200, r.status
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(s.seen) < args.lines for s in streams):
            time.sleep(0.05)
        stop.set()
        t.join()
        first = streams[0].seen
        missing = args.lines - len(first)
        lat = [(first[i] - sent[i]) * 1000 for i in first]
        rtt = [(acked[i] - sent[i]) * 1000 for i in sent]
        after = [(first[i] - acked[i]) * 1000 for i in first]
        print(f"live stream latency, {args.lines} lines one POST each, "
              f"{args.subscribers} subscriber(s), store sync {args.sync}:")
        for name, v in [("POST -> SSE", lat), ("POST round trip", rtt),
                        ("answer -> SSE", after)]:
            print(f"  {name:16} p50 {pct(v, 50):7.2f} ms  p90 {pct(v, 90):7.2f} ms  "
                  f"p99 {pct(v, 99):7.2f} ms  max {max(v):7.2f} ms")
        if missing:
            print(f"  {missing} lines never arrived")
        for k, s in enumerate(streams[1:], 1):
            if len(s.seen) != args.lines:
                print(f"  subscriber {k} got {len(s.seen)} lines")
        return 1 if missing else 0
    finally:
        for s in streams:
            s.sock.close()
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
