"""The live log stream, end to end: a real server, agents that register and
ship log records over HTTP, raw Server-Sent Events clients on sockets, and
`xluo logs -f`.

Each client gets exactly the lines that match its filters, once; a client
that stops reading loses its oldest lines (told by a `dropped` event) while
ingest goes on; a client that hangs up is forgotten; a client that comes back
with Last-Event-ID gets what it missed, without gaps or duplicates, while
lines keep coming.
"""
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENT_TOKEN, API_TOKEN, SSE, TestCase, binary, http,  # noqa: E402
                     wait_for)


def now_ms():
    return int(time.time() * 1000)


class Shipper:
    """One agent: registers, then posts log records as the protocol says."""

    def __init__(self, srv, agent_id, host):
        self.srv, self.agent_id, self.seq, self.offsets = srv, agent_id, 0, {}
        status, body = http("PUT", f"{srv.url}/api/v1/agents/{agent_id}", token=AGENT_TOKEN,
                            body={"v": 1, "agent_id": agent_id, "host": host, "ip": "10.0.0.1",
                                  "version": "t", "heartbeat_interval_ms": 10000})
        assert status == 200, body

    def post(self, texts, input="app", file="/var/log/app/app.log"):
        """Ship the lines of one file read; returns when they are stored."""
        off = self.offsets.get(file, 0)
        lines = []
        for t in texts:
            n = len(t.encode()) + 1
            lines.append({"o": off, "e": off + n, "t": t})
            off += n
        self.offsets[file] = off
        self.seq += 1
        ts = now_ms()
        status, body = http("POST", f"{self.srv.url}/api/v1/ingest", token=AGENT_TOKEN,
                            body={"v": 1, "agent_id": self.agent_id, "seq": self.seq,
                                  "sent": ts,
                                  "records": [{"type": "log", "ts": ts, "input": input,
                                               "file": file,
                                               "file_id": hashlib.sha1(file.encode())
                                               .hexdigest()[:16],
                                               "lines": lines}]},
                            timeout=60)
        assert status == 200, (status, body)
        return body


AIDS = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]


class LiveStream(TestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server(extra="max_records: 100000\n").start_fg()
        self.web = Shipper(self.srv, AIDS[0], "web1")
        self.db = Shipper(self.srv, AIDS[1], "db1")

    def subscribers(self):
        return self.metric("xluo_live_subscribers")

    def open(self, query="", **kw):
        c = SSE(self.srv, query, **kw)
        c.wait(lambda c: c.status is not None and c.comments, 10, "the stream to open")
        self.assertEqual(c.status, 200)
        self.assertTrue(c.headers["content-type"].startswith("text/event-stream"))
        self.addCleanup(c.close)
        return c

    def test_filters_each_client_gets_its_lines_once(self):
        clients = {
            "all": self.open(),
            "host": self.open("?host=web1"),
            "input": self.open("?input=nginx"),
            "file": self.open("?file=/var/log/app/*.log"),
            "q": self.open("?q=error%20NOT%20timeout"),
            "combo": self.open("?host=db1&q=%22slow%20query%22%20OR%20dead*"),
        }
        wait_for(lambda: self.subscribers() == 6, 10, "6 subscribers")
        # (shipper, input, file, text)
        lines = [
            (self.web, "app", "/var/log/app/app.log", "ERROR timeout after 30ms"),
            (self.web, "app", "/var/log/app/app.log", "error: connection refused"),
            (self.web, "nginx", "/var/log/nginx/access.log", "GET / 200"),
            (self.db, "app", "/var/log/app/db.log", "slow query: 2s"),
            (self.db, "pg", "/var/lib/pg/log/pg.log", "deadlock detected, error"),
            (self.db, "nginx", "/var/log/nginx/error.log", "upstream timed out"),
            (self.web, "app", "/var/log/app/sub/x.log", "info only"),
        ]
        for shipper, inp, path, text in lines:
            shipper.post([text], input=inp, file=path)
        want = {
            "all": [t for _, _, _, t in lines],
            "host": [t for s, _, _, t in lines if s is self.web],
            "input": ["GET / 200", "upstream timed out"],
            # fnmatch without flags: '*' crosses '/'
            "file": ["ERROR timeout after 30ms", "error: connection refused", "slow query: 2s",
                     "info only"],
            "q": ["error: connection refused", "deadlock detected, error"],
            "combo": ["slow query: 2s", "deadlock detected, error"],
        }
        for name, c in clients.items():
            c.wait(lambda c, n=len(want[name]): len(c.logs()) >= n, 20, f"{name}'s lines")
        for c in clients.values():
            c.pump(0.5)  # anything more would be a mistake
        for name, c in clients.items():
            self.assertEqual(c.lines(), want[name], name)
            ids = [int(i) for t, i, _ in c.events if t == "log"]
            self.assertEqual(ids, sorted(set(ids)), f"{name}: ids once each, in order")
            self.assertEqual(ids, [r["id"] for r in c.logs()])
        # The rows are the search's rows, field for field.
        found = self.srv.api("/api/v1/logs?limit=100")["logs"]
        by_id = {r["id"]: r for r in found}
        for r in clients["all"].logs():
            self.assertEqual(r, by_id[r["id"]])
        self.assertEqual(clients["host"].logs()[0]["host"], "web1")
        self.assertEqual(set(clients["all"].logs()[0]) >= {"agent_id", "offset", "ts", "filters"},
                         True)
        # The server stops cleanly with streams open (tearDown checks exit 0).

    def test_bad_requests(self):
        url = self.srv.url + "/api/v1/logs/stream"
        self.assertEqual(http("GET", url)[0], 401)
        self.assertEqual(http("GET", url, token=AGENT_TOKEN)[0], 401)
        for q, detail in [("?q=%22open", "q: "), ("?from=1h", "from"), ("?since_id=x", "since_id"),
                          ("?q=error%20OR", "q: ")]:
            status, body = http("GET", url + q, token=API_TOKEN)
            self.assertEqual(status, 400, (q, body))
            self.assertIn(detail, body["detail"])
        status, body = http("GET", url, token=API_TOKEN,
                            headers={"Last-Event-ID": "-3"})
        self.assertEqual(status, 400, body)
        self.assertIn("Last-Event-ID", body["detail"])
        self.assertEqual(self.subscribers(), 0)

    def metric(self, name):
        for line in self.srv.api("/metrics", token=None).splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        raise AssertionError(f"no {name} in /metrics")

    def test_slow_client_is_told_what_it_lost_and_ingest_goes_on(self):
        slow = self.open("?host=web1", rcvbuf=4096)
        fast = self.open("?host=web1")
        total, batch = 0, 2000
        pad = "x" * 150
        t0 = time.monotonic()
        # Until the slow client's queue overflows (the socket buffers in
        # between hold a few MiB, how much depends on the kernel).
        while total < 20000 or self.metric("xluo_live_dropped_total") == 0:
            self.assertLess(total, 400000, "nothing was ever dropped")
            start = time.monotonic()
            self.web.post([f"line {total + i} {pad}" for i in range(batch)])
            total += batch
            # Ingest is not slowed by a client that does not read.
            self.assertLess(time.monotonic() - start, 10, "a batch took too long")
            fast.pump(0.01)
        ingest_s = time.monotonic() - t0
        fast.wait(lambda c: len(c.logs()) == total, 60, "the fast client's lines")
        self.assertEqual(fast.dropped(), 0)
        # Now the slow client reads: what it got plus what it was told it
        # lost is everything, and the loss is reported where it happened.
        slow.wait(lambda c: len(c.logs()) + c.dropped() >= total, 60, "the slow client's lines")
        got, lost = len(slow.logs()), slow.dropped()
        self.assertEqual(got + lost, total)
        self.assertGreater(lost, 0)
        ids = [r["id"] for r in slow.logs()]
        self.assertEqual(ids, sorted(set(ids)))
        kinds = [t for t, _, _ in slow.events]
        first_drop = kinds.index("dropped")
        self.assertGreater(first_drop, 0)  # it got the oldest ones first
        # The newest lines are never the ones lost.
        self.assertEqual(slow.lines()[-1], f"line {total - 1} {pad}")
        # And it is live again.
        self.web.post(["after the storm"])
        slow.wait(lambda c: c.lines()[-1] == "after the storm", 10, "a new line")
        self.assertEqual(self.metric("xluo_live_dropped_total"), lost)
        print(f"\n  slow client: {got} lines, {lost} dropped; ingest of {total} lines took "
              f"{ingest_s:.1f}s", file=sys.stderr)

    def test_idle_stream_gets_a_ping_every_15s(self):
        c = self.open("?q=nothing%20matches%20this")
        t0 = time.monotonic()
        c.wait(lambda c: ": ping" in c.comments, 20, "a ping")
        self.assertLess(time.monotonic() - t0, 17)
        self.assertEqual(c.comments[0], ": connected")
        self.assertEqual(c.events, [])

    def test_disconnect_frees_the_subscriber(self):
        a, b, c = self.open(), self.open("?q=x"), self.open("?host=db1")
        wait_for(lambda: self.subscribers() == 3, 10, "3 subscribers")
        a.close()
        wait_for(lambda: self.subscribers() == 2, 10, "a freed while idle")
        # One that hangs up while lines flow to it.
        self.web.post([f"x {i}" for i in range(50)])
        b.wait(lambda c: len(c.logs()) >= 1, 10, "a line")
        b.close()
        self.web.post([f"x {i}" for i in range(50, 100)])
        wait_for(lambda: self.subscribers() == 1, 10, "b freed")
        c.close()
        wait_for(lambda: self.subscribers() == 0, 10, "all freed")

    def test_reconnect_with_last_event_id_misses_nothing(self):
        stop = threading.Event()
        posted = []

        def ship():
            i = 0
            while not stop.is_set():
                texts = [f"n{i + k}" for k in range(5)]
                self.db.post(texts)
                posted.extend(texts)
                i += 5
                time.sleep(0.005)

        first = self.open("?host=db1")
        t = threading.Thread(target=ship)
        t.start()
        try:
            first.wait(lambda c: len(c.logs()) >= 50, 20, "some lines")
            first.close()
            last_id = [i for ty, i, _ in first.events if ty == "log"][-1]
            time.sleep(0.3)  # lines come meanwhile
            second = self.open("?host=db1", last_id=last_id)
            second.wait(lambda c: len(c.logs()) >= 100, 20, "catch-up and live lines")
        finally:
            stop.set()
            t.join()
        final = max(r["id"] for r in self.srv.api("/api/v1/logs?host=db1&limit=1")["logs"])
        second.wait(lambda c: c.logs() and c.logs()[-1]["id"] == final, 20, "the last line")
        got_first = [r["id"] for r in first.logs() if r["id"] <= int(last_id)]
        got = got_first + [r["id"] for r in second.logs()]
        self.assertEqual(len(got), len(set(got)), "no duplicates")
        stored = []
        cursor = None
        while True:
            page = self.srv.api("/api/v1/logs?host=db1&limit=10000"
                                + (f"&cursor={cursor}" if cursor else ""))
            stored += [r["id"] for r in page["logs"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(sorted(got), sorted(stored), "no gaps")
        self.assertEqual(len(stored), len(posted))
        # since_id= in the URL does the same as the header.
        third = self.open(f"?host=db1&since_id={last_id}")
        third.wait(lambda c: c.logs() and c.logs()[-1]["id"] == final, 20, "the replay")
        self.assertEqual([r["id"] for r in third.logs()], [i for i in sorted(stored)
                                                          if i > int(last_id)])

    def test_cli_follow_prints_lines_as_they_arrive(self):
        self.web.post(["before 1", "before 2", "other"])
        env = dict(os.environ, XLUO_SERVER=self.srv.url, XLUO_TOKEN=API_TOKEN)
        proc = subprocess.Popen([binary("xluo"), "logs", "-f", "-n", "1", "--grep", "before OR now"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out = b""

        def read_until(text, timeout=15):
            nonlocal out
            deadline = time.monotonic() + timeout
            while text.encode() not in out:
                left = deadline - time.monotonic()
                if left <= 0 or proc.poll() is not None:
                    raise AssertionError(f"no {text!r} in the output: {out!r} "
                                         f"{proc.stderr.read() if proc.poll() is not None else ''}")
                r, _, _ = select.select([proc.stdout], [], [], left)
                if r:
                    out += os.read(proc.stdout.fileno(), 65536)

        try:
            read_until("before 2")
            self.assertNotIn(b"before 1", out)  # -n 1: only the newest
            wait_for(lambda: self.subscribers() == 1, 10, "the CLI's stream")
            for i in range(3):
                t0 = time.monotonic()
                self.web.post([f"now {i}", "ignored"])
                read_until(f"now {i}")
                self.assertLess(time.monotonic() - t0, 5)
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read()
            proc.stdout.close()
            proc.stderr.close()
        text = out.decode()
        self.assertEqual([ln.split(": ", 1)[1] for ln in text.splitlines()],
                         ["before 2", "now 0", "now 1", "now 2"])
        self.assertIn(" web1 /var/log/app/app.log: now 0", text)
        self.assertEqual(err, b"")
        wait_for(lambda: self.subscribers() == 0, 10, "the CLI's stream to go")


if __name__ == "__main__":
    unittest.main(verbosity=2)
