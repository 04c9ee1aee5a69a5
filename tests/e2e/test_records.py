"""Check results and custom events, end to end: a real server, a fake agent
that registers and posts `check` and `event` records over HTTP, the API,
the CLI, and the record stream (GET /api/v1/stream).

- checks: current states sorted by severity, history after state changes,
  an older result ignored, a resent batch changes nothing;
- events: stored once (a resent batch is a duplicate, and its records are
  not stored twice even when the seq record is forgotten), queried by type,
  host, time and field conditions, paged;
- the record stream: a subscriber gets the records of the types it names
  (an event type, check, metric), and only those;
- bad records and bad parameters are answered 4xx naming the field.
"""
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENT_TOKEN, API_TOKEN, SSE, TestCase, binary, cli,  # noqa: E402
                     http, wait_for)

AIDS = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]


def now_ms():
    return int(time.time() * 1000)


class FakeAgent:
    """Registers, then posts batches as the protocol says."""

    def __init__(self, srv, agent_id, host):
        self.srv, self.agent_id, self.seq = srv, agent_id, 0
        status, body = http("PUT", f"{srv.url}/api/v1/agents/{agent_id}", token=AGENT_TOKEN,
                            body={"v": 1, "agent_id": agent_id, "host": host, "ip": "10.0.0.1",
                                  "version": "t", "heartbeat_interval_ms": 10000})
        assert status == 200, body

    def batch(self, records, seq=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {"v": 1, "agent_id": self.agent_id, "seq": seq, "sent": now_ms(),
                "records": records}

    def post(self, body):
        return http("POST", f"{self.srv.url}/api/v1/ingest", token=AGENT_TOKEN, body=body)

    def send(self, records):
        status, resp = self.post(self.batch(records))
        assert status == 200, (status, resp)
        return resp


def check(name, state, ts, output="", **kw):
    r = {"type": "check", "ts": ts, "name": name, "state": state, "output": output}
    r.update(kw)
    return r


def event(name, fields, ts=None, **kw):
    r = {"type": "event", "ts": ts or now_ms(), "name": name, "fields": fields}
    r.update(kw)
    return r


class Records(TestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server().start_fg()
        self.web = FakeAgent(self.srv, AIDS[0], "web1")
        self.db = FakeAgent(self.srv, AIDS[1], "db1")

    def api(self, path, **params):
        q = urllib.parse.urlencode(params, doseq=True)
        return self.srv.api(path + ("?" + q if q else ""))

    def xluo(self, *args):
        r = cli(self.srv, *args)
        self.assertEqual(r.returncode, 0, f"xluo {args}: {r.stderr}")
        return r.stdout

    # ---- checks ----

    def test_checks_states_history_and_resend(self):
        t0 = now_ms() - 60000
        batch = self.web.batch([
            check("disk_root", "ok", t0, "DISK OK - free space: / 9000 MB (90%)",
                  exit_code=0, duration_ms=12, source="conf/cron.d/check_disk"),
            check("load", "ok", t0, "LOAD OK"),
        ])
        status, resp = self.web.post(batch)
        self.assertEqual((status, resp["accepted"]), (200, 2), resp)
        self.db.send([check("pg_conn", "critical", t0, "PG CRITICAL - refused",
                            long_output="line 2\nline 3", exit_code=2)])
        # disk goes to warning, then again warning, then an older result
        self.web.send([check("disk_root", "warning", t0 + 1000,
                             "DISK WARNING - free space: / 3326 MB (56%)", exit_code=1)])
        self.web.send([check("disk_root", "warning", t0 + 2000, "DISK WARNING - 3300 MB",
                             exit_code=1)])
        self.web.send([check("disk_root", "critical", t0 + 500, "stale result")])
        # the same first batch again: a duplicate, nothing changes
        status, resp = self.web.post(batch)
        self.assertEqual((status, resp.get("duplicate")), (200, True), resp)

        checks = self.api("/api/v1/checks")["checks"]
        self.assertEqual([(c["host"], c["name"], c["state"]) for c in checks],
                         [("db1", "pg_conn", "critical"), ("web1", "disk_root", "warning"),
                          ("web1", "load", "ok")])
        disk = checks[1]
        self.assertEqual(disk["output"], "DISK WARNING - 3300 MB")
        self.assertEqual((disk["ts"], disk["since"]), (t0 + 2000, t0 + 1000))
        self.assertEqual(disk["agent_id"], AIDS[0])
        self.assertEqual(disk["exit_code"], 1)
        self.assertIsNone(disk["long_output"])
        self.assertEqual(checks[0]["long_output"], "line 2\nline 3")
        self.assertEqual(set(disk), {"host", "agent_id", "name", "state", "output", "long_output",
                                     "exit_code", "duration_ms", "source", "ts", "since",
                                     "interval_ms", "stale"})
        self.assertEqual([c["name"] for c in
                          self.api("/api/v1/checks", state="critical")["checks"]], ["pg_conn"])
        self.assertEqual([c["name"] for c in
                          self.api("/api/v1/checks", host="web1", name="load")["checks"]],
                         ["load"])

        changes = self.api("/api/v1/checks/history", host="web1", name="disk_root")["changes"]
        self.assertEqual([(c["from"], c["to"], c["ts"]) for c in changes],
                         [("ok", "warning", t0 + 1000), (None, "ok", t0)])
        self.assertEqual(changes[0]["output"], "DISK WARNING - free space: / 3326 MB (56%)")
        self.assertEqual(len(self.api("/api/v1/checks/history")["changes"]), 4)
        self.assertEqual(len(self.api("/api/v1/checks/history", limit=1)["changes"]), 1)
        self.assertEqual(self.api("/api/v1/checks/history", since=t0 + 900)["changes"][0]["to"],
                         "warning")

        out = self.xluo("checks")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^HOST\s+NAME\s+STATE\s+SINCE\s+OUTPUT$")
        self.assertRegex(lines[1], r"^db1\s+pg_conn\s+critical\s+\S+ ago\s+PG CRITICAL - refused$")
        self.assertRegex(lines[2], r"^web1\s+disk_root\s+warning\s+")
        self.assertIn("critical", self.xluo("checks", "--state", "critical"))
        self.assertNotIn("web1", self.xluo("checks", "--state", "critical"))
        hist = self.xluo("checks", "history", "--host", "web1", "--name", "disk_root",
                         "--since", "1h").splitlines()
        self.assertRegex(hist[0], r"^TIME\s+HOST\s+NAME\s+FROM\s+TO\s+OUTPUT$")
        self.assertRegex(hist[1], r"web1\s+disk_root\s+-\s+ok\s+DISK OK")
        self.assertRegex(hist[2], r"web1\s+disk_root\s+ok\s+warning\s+DISK WARNING")
        self.assertEqual(json.loads(self.xluo("checks", "--json"))["checks"][0]["name"],
                         "pg_conn")

    # ---- events ----

    def test_events_query_dedup_and_cli(self):
        t0 = now_ms() - 30000
        batch = self.web.batch([
            event("demo", {"key1": "value1", "n": 3}, t0, source="conf/cron.d/demo_cron.py"),
            event("demo", {"key1": "value2", "n": 10, "deep": {"ok": True}}, t0 + 1000),
            event("deploy", {"version": "1.2.3"}, t0 + 2000),
        ])
        status, resp = self.web.post(batch)
        self.assertEqual((status, resp["accepted"]), (200, 3), resp)
        self.db.send([event("demo", {"key1": "value3", "n": 7}, t0 + 3000)])
        # Resent: a duplicate batch.
        status, resp = self.web.post(batch)
        self.assertEqual((status, resp.get("duplicate")), (200, True), resp)

        evs = self.api("/api/v1/events")["events"]
        self.assertEqual([(e["host"], e["type"], e["ts"]) for e in evs],
                         [("db1", "demo", t0 + 3000), ("web1", "deploy", t0 + 2000),
                          ("web1", "demo", t0 + 1000), ("web1", "demo", t0)])
        first = evs[-1]
        self.assertEqual(first["fields"], {"key1": "value1", "n": 3})
        self.assertEqual(first["source"], "conf/cron.d/demo_cron.py")
        self.assertEqual(first["agent_id"], AIDS[0])
        self.assertIsNone(evs[0]["source"])
        self.assertEqual(set(first), {"id", "ts", "host", "agent_id", "type", "fields", "source"})

        def types(**p):
            return [(e["host"], e["fields"].get("n")) for e in self.api("/api/v1/events", **p)
                    ["events"]]

        self.assertEqual(types(type="demo"), [("db1", 7), ("web1", 10), ("web1", 3)])
        self.assertEqual(types(type="demo", host="web1"), [("web1", 10), ("web1", 3)])
        self.assertEqual(types(type="demo", where="n>3"), [("db1", 7), ("web1", 10)])
        self.assertEqual(types(type="demo", where=["n>=3", "n<10"]), [("db1", 7), ("web1", 3)])
        self.assertEqual(types(type="demo", where="key1=value2"), [("web1", 10)])
        self.assertEqual(types(type="demo", where="key1!=value2"), [("db1", 7), ("web1", 3)])
        self.assertEqual(types(where="deep.ok=true"), [("web1", 10)])
        self.assertEqual(types(where="n<=3"), [("web1", 3)])
        self.assertEqual(types(since=t0 + 500, until=t0 + 2500), [("web1", None), ("web1", 10)])

        # Paging, newest first.
        page = self.api("/api/v1/events", limit=3)
        self.assertEqual(len(page["events"]), 3)
        rest = self.api("/api/v1/events", limit=3, before=page["next_before"])
        self.assertEqual([e["ts"] for e in rest["events"]], [t0])
        self.assertIsNone(rest["next_before"])

        out = self.xluo("events", "--type", "demo", "--where", "n>3").splitlines()
        self.assertRegex(out[0], r"^TIME\s+HOST\s+TYPE\s+FIELDS$")
        self.assertRegex(out[1], r"web1\s+demo\s+key1=value2 n=10 deep=\{\"ok\":true\}$")
        self.assertRegex(out[2], r"db1\s+demo\s+key1=value3 n=7$")
        self.assertEqual(len(out), 3)
        self.assertIn("no events", self.xluo("events", "--type", "nothing"))
        self.assertEqual(len(json.loads(self.xluo("events", "--json", "--limit", "2"))["events"]),
                         2)

    def test_events_not_stored_twice_when_seq_forgotten(self):
        # A server killed between storing and recording the seq answers
        # the resend as new: the event store itself keeps one copy.
        ts = now_ms()
        body = self.web.batch([event("once", {"a": 1}, ts)])
        self.assertEqual(self.web.post(body)[0], 200)
        self.srv.kill()
        for suffix in ("", "-wal", "-shm"):
            path = os.path.join(self.srv.prefix, "data", "server.db" + suffix)
            if os.path.exists(path):
                os.remove(path)
        self.srv.start_fg()
        FakeAgent(self.srv, AIDS[0], "web1")
        status, resp = self.web.post(body)
        self.assertEqual(status, 200, resp)
        self.assertEqual(len(self.api("/api/v1/events", type="once")["events"]), 1)

    # ---- the record stream ----

    def open_stream(self, query):
        c = SSE(self.srv, query, path="/api/v1/stream")
        c.wait(lambda c: c.status is not None and c.comments, 10, "the stream to open")
        self.assertEqual(c.status, 200)
        self.assertTrue(c.headers["content-type"].startswith("text/event-stream"))
        self.addCleanup(c.close)
        return c

    def test_stream_by_type(self):
        demo = self.open_stream("?type=demo")
        checks = self.open_stream("?type=check")
        allev = self.open_stream("?type=event&host=db1")
        metrics = self.open_stream("?type=metric&type=deploy")
        cond = self.open_stream("?type=demo&where=n%3E5")
        logs = self.open_stream("?type=log&host=web1")
        ts = now_ms()
        self.web.send([event("demo", {"n": 1}, ts), event("deploy", {"v": "2"}, ts),
                       check("disk", "ok", ts, "fine"),
                       {"type": "metric", "ts": ts, "name": "m_x", "labels": {"k": "v"},
                        "value": 1.5},
                       {"type": "log", "ts": ts, "input": "app", "file": "/var/log/a.log",
                        "file_id": "00000000000000aa", "lines": [{"o": 0, "e": 4, "t": "abc"}]}])
        self.db.send([event("demo", {"n": 9}, ts + 1)])
        demo.wait(lambda c: len(c.records()) >= 2, 10, "two demo events")
        checks.wait(lambda c: len(c.records()) >= 1, 10, "a check")
        allev.wait(lambda c: len(c.records()) >= 1, 10, "db1's event")
        metrics.wait(lambda c: len(c.records()) >= 2, 10, "a metric and a deploy event")
        cond.wait(lambda c: len(c.records()) >= 1, 10, "an event with n > 5")
        logs.wait(lambda c: len(c.records()) >= 1, 10, "a log line")
        for c in (demo, checks, allev, metrics, cond, logs):
            c.pump(0.5)  # anything more would be a mistake
        d = demo.records()
        self.assertEqual([(r["type"], r["name"], r["host"], r["fields"]) for r in d],
                         [("event", "demo", "web1", {"n": 1}), ("event", "demo", "db1", {"n": 9})])
        self.assertEqual(d[0]["agent_id"], AIDS[0])
        self.assertEqual(d[0]["ts"], ts)
        self.assertIsInstance(d[0]["id"], int)
        self.assertEqual([(r["type"], r["name"], r["state"], r["output"], r["host"])
                          for r in checks.records()],
                         [("check", "disk", "ok", "fine", "web1")])
        self.assertEqual([(r["name"], r["host"]) for r in allev.records()], [("demo", "db1")])
        m = metrics.records()
        self.assertEqual(sorted(r["type"] for r in m), ["event", "metric"])
        metric = [r for r in m if r["type"] == "metric"][0]
        self.assertEqual((metric["name"], metric["value"], metric["labels"]),
                         ("m_x", 1.5, {"k": "v", "host": "web1"}))
        self.assertEqual([r["fields"] for r in cond.records()], [{"n": 9}])
        self.assertEqual([(r["type"], r["host"], r["file"], r["line"]) for r in logs.records()],
                         [("log", "web1", "/var/log/a.log", "abc")])

        # `xluo events -f` gets the next demo event.
        env = dict(os.environ, XLUO_SERVER=self.srv.url, XLUO_TOKEN=API_TOKEN)
        proc = subprocess.Popen([binary("xluo"), "events", "-f", "--type", "demo"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        try:
            wait_for(lambda: self.srv_metric("xluo_live_subscribers") >= 7, 10,
                     "the CLI's stream")
            self.web.send([event("demo", {"from": "cli"}, now_ms())])
            line = proc.stdout.readline()
            self.assertRegex(line, r"web1 demo from=cli$")
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()

    def srv_metric(self, name):
        status, text = http("GET", self.srv.url + "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0

    # ---- bad input ----

    def test_stale_checks(self):
        """A check whose results stop coming for 3 of its intervals is
        marked stale; one without an interval never is."""
        # Measured on the server's clock: an agent's ts far in the past
        # (clock skew) does not make a check stale by itself.
        now = now_ms()
        self.web.send([check("fresh", "ok", now - 3600000, interval_ms=60000),
                       check("gone", "warning", now, interval_ms=200),
                       check("pushed", "ok", now - 3600000)])
        got = wait_for(lambda: (lambda g: g if g["gone"]["stale"] else None)(
            {c["name"]: c for c in self.api("/api/v1/checks")["checks"]}), 10,
            "the check with a 200 ms interval to go stale")
        self.assertEqual((got["fresh"]["stale"], got["fresh"]["interval_ms"]), (False, 60000))
        self.assertEqual(got["gone"]["interval_ms"], 200)
        self.assertEqual((got["pushed"]["stale"], got["pushed"]["interval_ms"]), (False, None))
        out = self.xluo("checks")
        self.assertRegex(out, r"gone +warning \(stale\)")
        self.assertNotIn("ok (stale)", out)

    def test_bad_records_and_parameters(self):
        ts = now_ms()
        cases = [
            (check("", "ok", ts), r"records\[0\]\.name"),
            (check("x", "OK", ts), r"records\[0\]\.state: expected ok, warning"),
            (check("x", "bad", ts), r"records\[0\]\.state"),
            (check("x", "ok", ts, exit_code="1"), r"records\[0\]\.exit_code"),
            (check("x", "ok", ts, interval_ms=0), r"records\[0\]\.interval_ms"),
            (check("x", "ok", ts, output="a" * 40000, long_output="b" * 30000),
             r"records\[0\]\.long_output: output and long_output"),
            ({"type": "check", "name": "x", "state": "ok"}, r"records\[0\]\.ts"),
            (event("log", {}), r"records\[0\]\.name: expected the event type"),
            (event("a b", {}), r"records\[0\]\.name"),
            (event("x", [1]), r"records\[0\]\.fields: expected an object"),
            (event("x", {"pad": "y" * 70000}), r"records\[0\]\.fields: more than"),
        ]
        for rec, detail in cases:
            status, resp = self.web.post(self.web.batch([event("ok", {}), rec]))
            detail = detail.replace(r"records\[0\]", r"records\[1\]")
            self.assertEqual(status, 422, (rec, resp))
            self.assertRegex(resp["detail"], detail)
        self.assertEqual(self.api("/api/v1/events")["events"], [])
        for path, detail in [
            ("/api/v1/checks?state=bad", r"^state=bad"),
            ("/api/v1/checks/history?since=yesterday", r"^since=yesterday"),
            ("/api/v1/checks/history?limit=0", r"^limit=0"),
            ("/api/v1/events?type=a%20b", r"^type=a b"),
            ("/api/v1/events?where=n%3E", None),
            ("/api/v1/events?where=bad", r"^where=bad: .*expected KEY OP VALUE"),
            ("/api/v1/events?where=a..b%3D1", r"^where=a\.\.b=1: key 'a\.\.b': an empty name"),
            ("/api/v1/events?before=abc", r"^before=abc"),
            ("/api/v1/events?before=999999", r"^before=999999: no event"),
            ("/api/v1/events?since=10&until=5", r"until is before since"),
            ("/api/v1/stream", r"^type: required"),
            ("/api/v1/stream?type=a%20b", r"^type=a b"),
            ("/api/v1/stream?type=check&where=a%3D1", r"^where: conditions on fields"),
        ]:
            status, resp = http("GET", self.srv.url + path, token=API_TOKEN)
            if detail is None:  # an empty value is a string: fine
                self.assertEqual(status, 200, (path, resp))
                continue
            self.assertEqual(status, 400, (path, resp))
            self.assertEqual(resp["error"], "bad parameter", (path, resp))
            self.assertRegex(resp["detail"], detail, path)
        status, _ = http("GET", self.srv.url + "/api/v1/events")
        self.assertEqual(status, 401)
        r = cli(self.srv, "checks", "--state", "bad")
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn("--state: unknown state 'bad'", r.stderr)
        r = cli(self.srv, "events", "--where", "bad")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("where=bad", r.stderr)


if __name__ == "__main__":
    unittest.main()
