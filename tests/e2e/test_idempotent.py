"""Exactly-once ingest on the server (docs/protocol.md "Exactly once"): a
batch sent again, also after a restart or a kill -9, is answered
{"duplicate": true} and stored once; the floor an agent promises; copies
of one batch sent at the same time; zstd-compressed bodies (good, several
frames, corrupt, too large once decompressed, unknown encodings); the
stats of heartbeats shown by the API, `xluo agents` and /metrics."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENT_TOKEN, API_TOKEN, TestCase, cli, http  # noqa: E402

AID = "0123456789abcdef0123456789abcdef"
BID = "fedcba9876543210fedcba9876543210"


def now_ms():
    return int(time.time() * 1000)


def post(url, body, headers=None, timeout=30):
    """POST raw bytes as the agent; (status, parsed JSON or text, headers)."""
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {AGENT_TOKEN}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), e.headers
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode(errors="replace"), hdrs


def zstd(data, *args):
    """data compressed by the zstd command-line tool (Python has no zstd)."""
    exe = shutil.which("zstd")
    if not exe:
        raise AssertionError("the zstd command is needed to make test bodies: "
                             "apt-get install zstd (scripts/install-deps.sh does)")
    return subprocess.run([exe, "-q", "-c", *args], input=data, capture_output=True,
                          check=True).stdout


class Idempotent(TestCase):
    def start(self, extra=""):
        self.srv = self.server(extra=extra).start_fg()
        for aid, host in ((AID, "web1"), (BID, "web2")):
            self.register(aid, host)
        return self.srv

    def register(self, aid, host):
        status, body = http("PUT", f"{self.srv.url}/api/v1/agents/{aid}", token=AGENT_TOKEN,
                            body={"v": 1, "agent_id": aid, "host": host, "ip": "10.0.0.1",
                                  "version": "t", "labels": {},
                                  "heartbeat_interval_ms": 10000})
        self.assertEqual(status, 200, body)

    def restart(self, sig=signal.SIGTERM):
        self.srv.stop(sig)
        self.srv.start_fg()

    def batch(self, seq, name="m_idem", n=3, aid=AID, floor=None, logs=0, ts=None):
        ts = ts or now_ms() - 60000
        recs = [{"type": "metric", "ts": ts + i, "name": name, "labels": {"seq": str(seq)},
                 "value": i} for i in range(n)]
        if logs:
            recs.append({"type": "log", "ts": ts, "input": "app", "file": f"/l/{name}.log",
                         "file_id": f"{seq:016x}",
                         "lines": [{"o": 10 * i, "e": 10 * i + 9, "t": f"{name} seq {seq} #{i}"}
                                   for i in range(logs)]})
        b = {"v": 1, "agent_id": aid, "seq": seq, "sent": now_ms(), "records": recs}
        if floor is not None:
            b["floor"] = floor
        return json.dumps(b).encode()

    def ingest(self, body, headers=None):
        return post(f"{self.srv.url}/api/v1/ingest", body, headers)

    def assert_new(self, body, accepted, headers=None):
        status, resp, _ = self.ingest(body, headers)
        self.assertEqual(status, 200, resp)
        self.assertEqual(resp["accepted"], accepted, resp)
        self.assertNotIn("duplicate", resp)
        return resp

    def assert_duplicate(self, body, seq, headers=None):
        status, resp, _ = self.ingest(body, headers)
        self.assertEqual((status, resp), (200, {"accepted": 0, "seq": seq, "duplicate": True}))

    def metrics(self):
        status, text = http("GET", f"{self.srv.url}/metrics")
        self.assertEqual(status, 200)
        out = {}
        for ln in text.splitlines():
            if ln and not ln.startswith("#"):
                k, v = ln.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def points(self, name="m_idem", seq=None):
        """Every stored point of the metric (of one seq's series)."""
        q = {"name": name, "from": "1h", "agg": "raw"}
        if seq is not None:
            q["match"] = f"seq={seq}"
        body = self.srv.api("/api/v1/query?" + urllib.parse.urlencode(q))
        return sorted(p[0] for s in body["series"] for p in s["points"])

    def count(self, name, seq):
        """How many samples one seq's series holds (too many to list)."""
        body = self.srv.api("/api/v1/query?" + urllib.parse.urlencode(
            {"name": name, "from": "1h", "step": "1d", "agg": "count", "match": f"seq={seq}"}))
        return sum(p[1] for s in body["series"] for p in s["points"])

    def log_lines(self, q):
        body = self.srv.api("/api/v1/logs?" + urllib.parse.urlencode(
            {"q": q, "from": "1h", "limit": 10000}))
        return [r["line"] for r in body["logs"]]

    def seen_row(self, aid):
        """The agent's ingest_seen row (floor, runs), read from data/server.db."""
        db = sqlite3.connect(os.path.join(self.srv.prefix, "data", "server.db"))
        try:
            return db.execute("SELECT floor, runs FROM ingest_seen WHERE agent_id = ?",
                              (aid,)).fetchone()
        finally:
            db.close()

    # ---- exactly once ----------------------------------------------------

    def test_resent_batch_is_stored_once_across_restarts(self):
        self.start()
        b1 = self.batch(1, n=5, logs=4)
        self.assert_new(b1, 9)
        self.assert_duplicate(b1, 1)
        m = self.metrics()
        self.assertEqual(m["xluo_ingest_duplicate_batches_total"], 1)
        self.assertEqual(m["xluo_ingest_batches_total"], 1)
        self.assertEqual(m["xluo_ingest_samples_total"], 5)
        self.assertEqual(m["xluo_logs_duplicates_total"], 0)  # not even offered to the store

        self.restart()
        self.assert_duplicate(b1, 1)
        # A kill -9 right after the answer: the seq was recorded before it.
        b2 = self.batch(2, n=5, logs=4)
        self.assert_new(b2, 9)
        self.assertEqual(self.srv.api(f"/api/v1/agents/{AID}")["last_seq"], 2)
        self.restart(signal.SIGKILL)
        self.assert_duplicate(b2, 2)
        self.assert_duplicate(b1, 1)
        m = self.metrics()
        self.assertEqual(m["xluo_ingest_duplicate_batches_total"], 2)
        self.assertEqual(m.get("xluo_ingest_samples_total"), 0)
        self.assertEqual(m["xluo_logs_duplicates_total"], 0)
        # stored once: five points per batch, four lines
        self.assertEqual(len(self.points(seq=1)), 5)
        self.assertEqual(len(self.points(seq=2)), 5)
        self.assertEqual(len(self.log_lines("m_idem")), 8)
        # the other agent's seq 1 is another batch
        self.assert_new(self.batch(1, name="m_other", aid=BID), 3)

    def test_out_of_order_and_seq_zero(self):
        self.start()
        for seq in (3, 1, 5, 2):
            self.assert_new(self.batch(seq), 3)
        for seq in (1, 2, 3, 5):
            self.assert_duplicate(self.batch(seq), seq)
        self.assert_new(self.batch(4), 3)
        # 1..5 stored: one number, no runs left
        self.srv.stop()
        self.assertEqual(self.seen_row(AID), (6, ""))
        self.srv.start_fg()
        self.assert_duplicate(self.batch(4), 4)
        # seq 0 is not numbered: never deduplicated
        self.assert_new(self.batch(0, name="m_zero"), 3)
        self.assert_new(self.batch(0, name="m_zero"), 3)

    def test_floor(self):
        self.start()
        self.assert_new(self.batch(1000), 3)   # seqs jump after an agent restart
        self.assert_new(self.batch(1002), 3)
        self.assert_new(self.batch(1005), 3)
        self.srv.stop()
        self.assertEqual(self.seen_row(AID), (0, "1000-1000,1002-1002,1005-1005"))
        self.srv.start_fg()
        # the agent promises: nothing below 1004 comes again
        self.assert_new(self.batch(1004, floor=1004), 3)
        # 1001 and 1003 were never sent, and now never will be: duplicates
        self.assert_duplicate(self.batch(1001), 1001)
        self.assert_duplicate(self.batch(1003), 1003)
        self.assertEqual(self.points(seq=1001), [])
        self.assertEqual(self.points(seq=1003), [])
        # pruned: the floor moved up past 1005, the runs below it are gone
        self.srv.stop()
        self.assertEqual(self.seen_row(AID), (1006, ""))
        self.srv.start_fg()
        self.assert_duplicate(self.batch(1003), 1003)
        self.assert_new(self.batch(1006, floor=1006), 3)
        # a floor above the batch's own seq is a broken promise
        status, resp, _ = self.ingest(self.batch(1010, floor=1011))
        self.assertEqual(status, 400, resp)
        self.assertEqual(resp["error"], "malformed batch")
        self.assertIn("floor: 1011 is above seq 1010", resp["detail"])
        status, resp, _ = self.ingest(self.batch(1010, floor=-1))
        self.assertEqual(status, 400, resp)
        self.assertIn("floor", resp["detail"])

    def test_copies_in_flight_get_busy(self):
        """Copies of one batch sent at the same moment (an agent that timed
        out and sent it again while the first copy was still being stored):
        one is stored, the others are told busy (503, Retry-After: 1) or, when
        they come after it, duplicate. Never stored twice."""
        self.start()
        saw_busy = False
        for rnd in range(1, 9):
            body = self.batch(rnd, name="m_busy", n=40000)
            results, barrier = [], threading.Barrier(4)

            def send():
                barrier.wait()
                results.append(self.ingest(body))
            threads = [threading.Thread(target=send) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            stored = [r for r in results if r[0] == 200 and not r[1].get("duplicate")]
            self.assertEqual(len(stored), 1, [r[:2] for r in results])
            for status, resp, hdrs in results:
                if status == 503:
                    saw_busy = True
                    self.assertEqual(resp["error"], "busy")
                    self.assertIn(f"batch {rnd} of agent {AID}", resp["detail"])
                    self.assertEqual(hdrs.get("Retry-After"), "1")
                    # what the agent does next: retry, and learn it is stored
                    self.assert_duplicate(body, rnd)
                elif status == 200:
                    self.assertEqual(resp["seq"], rnd)
                else:
                    self.fail(f"unexpected answer {status} {resp}")
            self.assertEqual(self.count("m_busy", rnd), 40000)
            if saw_busy and rnd >= 2:
                break
        self.assertTrue(saw_busy, "no copy was ever told busy in 8 rounds")
        self.assertGreater(self.metrics()['xluo_ingest_rejected_total{reason="busy"}'], 0)

    # ---- compressed bodies ----------------------------------------------

    def test_zstd_bodies(self):
        self.start(extra="max_body: 64KiB\n")
        zh = {"Content-Encoding": "zstd"}
        b1 = self.batch(1, name="m_zstd", n=50, logs=3)
        self.assert_new(zstd(b1), 53, zh)
        self.assertEqual(len(self.points("m_zstd")), 50)
        self.assertEqual(len(self.log_lines("m_zstd")), 3)
        # the same batch again, plain: a duplicate either way
        self.assert_duplicate(b1, 1)
        self.assert_duplicate(zstd(b1), 1, zh)
        # several frames (written by a streaming compressor): one body
        b2 = self.batch(2, name="m_zstd2", n=10)
        half = len(b2) // 2
        self.assert_new(zstd(b2[:half]) + zstd(b2[half:]), 10, zh)
        # a frame of unknown size, as from a pipe (zstd's window 2^21 > max_body)
        b3 = self.batch(3, name="m_zstd3", n=10)
        framed = subprocess.run(f"cat | {shutil.which('zstd') or 'zstd'} -q -c", shell=True,
                                input=b3, capture_output=True, check=True).stdout
        self.assert_new(framed, 10, {"Content-Encoding": " ZSTD "})
        # identity is plain
        self.assert_new(self.batch(4, name="m_ident"), 3, {"Content-Encoding": "identity"})

        # corrupt frames: 400 naming zstd, nothing stored
        z5 = zstd(self.batch(5, name="m_bad"))
        for bad in (z5[:len(z5) - 4], b"\x28\xb5\x2f\xfd" + b"\xff" * 40, b"not zstd at all",
                    b""):
            status, resp, _ = self.ingest(bad, zh)
            self.assertEqual(status, 400, (bad, resp))
            self.assertEqual(resp["error"], "malformed batch")
            self.assertTrue(resp["detail"].startswith("zstd: "), resp)
        # decompressed over max_body (64 KiB), though small on the wire
        big = self.batch(6, name="m_big", n=2000)
        self.assertGreater(len(big), 65536)
        zbig = zstd(big, "-19")
        self.assertLess(len(zbig), 65536)
        status, resp, _ = self.ingest(zbig, zh)
        self.assertEqual(status, 413, resp)
        self.assertEqual(resp["error"], "body too large")
        self.assertIn("max_body (65536 bytes)", resp["detail"])
        # 16 MiB of zeros in a few hundred bytes: refused, the server lives on
        bomb = zstd(b"\0" * (16 << 20), "-19")
        status, resp, _ = self.ingest(bomb, zh)
        self.assertEqual(status, 413, resp)
        # encodings the server does not speak: 415 listing those it does
        for enc in ("gzip", "br", "zstd, gzip"):
            status, resp, _ = self.ingest(zstd(self.batch(7)), {"Content-Encoding": enc})
            self.assertEqual(status, 415, resp)
            self.assertEqual(resp["error"], "unsupported content encoding")
            self.assertIn("identity, zstd", resp["detail"])
        self.assertEqual(self.points("m_bad") + self.points("m_big"), [])
        m = self.metrics()
        self.assertEqual(m["xluo_ingest_zstd_bodies_total"], 4)
        self.assertGreater(m['xluo_ingest_zstd_bytes_total{side="out"}'],
                           m['xluo_ingest_zstd_bytes_total{side="in"}'])
        self.assertEqual(m['xluo_ingest_rejected_total{reason="encoding"}'], 7)
        self.assertEqual(m['xluo_ingest_rejected_total{reason="too_big"}'], 2)
        self.assert_new(self.batch(7), 3)

    # ---- agent health -----------------------------------------------------

    def heartbeat(self, aid, stats):
        return http("POST", f"{self.srv.url}/api/v1/agents/{aid}/heartbeat", token=AGENT_TOKEN,
                    body={"v": 1, "ts": now_ms(), "stats": stats})

    def test_heartbeat_stats(self):
        self.start()
        stats = {"batches_sent": 40, "records_sent": 5000, "batches_dropped": 1,
                 "records_dropped": 17, "retries": 6, "outbox_bytes": 3 * 1048576 // 2,
                 "outbox_records": 900, "outbox_oldest_age_ms": 125000, "in_flight": 2,
                 "breakers": [{"server": "http://a:21002", "state": "open", "failures": 5},
                              {"server": "http://b:21002", "state": "closed", "failures": 0}]}
        status, body = self.heartbeat(AID, stats)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.srv.api(f"/api/v1/agents/{AID}")["stats"], stats)
        agents = {a["id"]: a for a in self.srv.api("/api/v1/agents")["agents"]}
        self.assertEqual(agents[AID]["stats"], stats)
        self.assertIsNone(agents[BID]["stats"])  # no heartbeat yet

        r = cli(self.srv, "agents")
        self.assertEqual(r.returncode, 0, r.stderr)
        head, web1, web2 = r.stdout.splitlines()
        self.assertRegex(head, r"STATUS\s+LAST SEEN\s+OUTBOX\s+BACKLOG\s+DROPPED\s+LABELS$")
        self.assertRegex(web1, r"^web1 .* 1\.5 MiB\s+2m\s+17\s+-$")
        self.assertRegex(web2, r"^web2 .*\s+-\s+-\s+-\s+-$")
        r = cli(self.srv, "agents", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = {a["id"]: a for a in json.loads(r.stdout)["agents"]}
        self.assertEqual(shown[AID]["stats"]["breakers"][0]["state"], "open")

        m = self.metrics()
        label = f'{{agent_id="{AID}",host="web1"}}'
        self.assertEqual(m["xluo_agent_outbox_bytes" + label], 3 * 1048576 // 2)
        self.assertEqual(m["xluo_agent_outbox_oldest_age_seconds" + label], 125)
        self.assertEqual(m["xluo_agent_records_dropped_total" + label], 17)

        # the next heartbeat replaces them
        status, _ = self.heartbeat(AID, {"outbox_bytes": 0, "outbox_oldest_age_ms": 0})
        self.assertEqual(status, 200)
        self.assertEqual(self.srv.api(f"/api/v1/agents/{AID}")["stats"],
                         {"outbox_bytes": 0, "outbox_oldest_age_ms": 0})
        web1 = cli(self.srv, "agents").stdout.splitlines()[1]
        self.assertRegex(web1, r"^web1 .* 0 B\s+-\s+-\s+-$")
        # not an object, too large: refused, the last stats stay
        status, body = self.heartbeat(AID, [1, 2])
        self.assertEqual((status, body["detail"]), (400, "stats: expected an object"))
        status, body = self.heartbeat(AID, {f"k{i}": i for i in range(3000)})
        self.assertEqual(status, 413, body)
        self.assertIn("16384", body["detail"])
        self.assertEqual(self.srv.api(f"/api/v1/agents/{AID}")["stats"]["outbox_bytes"], 0)
        # a heartbeat without stats keeps them too
        status, _ = http("POST", f"{self.srv.url}/api/v1/agents/{AID}/heartbeat",
                         token=AGENT_TOKEN, body={"v": 1, "ts": now_ms()})
        self.assertEqual(status, 200)
        self.assertEqual(self.srv.api(f"/api/v1/agents/{AID}")["stats"]["outbox_bytes"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
