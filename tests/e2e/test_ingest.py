"""Bad input to the server: every case gets a 4xx with {"error","detail"},
and the server keeps serving everyone else."""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENT_TOKEN, API_TOKEN, TestCase, http  # noqa: E402

AID = "0123456789abcdef0123456789abcdef"


def now_ms():
    return int(time.time() * 1000)


class BadInput(TestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server(extra="max_body: 64KiB\nmax_records: 100\n").start_fg()
        status, _ = http("PUT", f"{self.srv.url}/api/v1/agents/{AID}", token=AGENT_TOKEN,
                         body={"v": 1, "agent_id": AID, "host": "h1", "ip": "10.0.0.1",
                               "version": "t", "labels": {"role": "db"},
                               "heartbeat_interval_ms": 1000})
        self.assertEqual(status, 200)

    def batch(self, records, seq=1, **kw):
        b = {"v": 1, "agent_id": AID, "seq": seq, "sent": now_ms(), "records": records}
        b.update(kw)
        return b

    def metric(self, name="m_test", value=1.5, ts=None, labels=None):
        return {"type": "metric", "ts": ts or now_ms(), "name": name,
                "labels": labels or {}, "value": value}

    def ingest(self, body, token=AGENT_TOKEN):
        return http("POST", f"{self.srv.url}/api/v1/ingest", body=body, token=token)

    def assert_rejected(self, status_want, body, detail_re, token=AGENT_TOKEN):
        status, resp = self.ingest(body, token)
        self.assertEqual(status, status_want, resp)
        self.assertIsInstance(resp, dict, resp)
        self.assertIn("error", resp)
        self.assertRegex(resp["detail"], detail_re)
        # and the server still serves a good batch
        ok, resp2 = self.ingest(self.batch([self.metric()]))
        self.assertEqual(ok, 200, resp2)

    def test_good_batch_is_stored_with_agent_labels(self):
        status, resp = self.ingest(self.batch([self.metric(labels={"k": "v"}, value="NaN"),
                                               self.metric(value=2)]))
        self.assertEqual((status, resp["accepted"]), (200, 2))
        q = self.srv.api("/api/v1/query?name=m_test&from=1m")["series"]
        self.assertEqual({json.dumps(s["labels"], sort_keys=True) for s in q},
                         {json.dumps({"host": "h1", "role": "db"}, sort_keys=True),
                          json.dumps({"host": "h1", "role": "db", "k": "v"}, sort_keys=True)})
        nan = [s for s in q if "k" in s["labels"]][0]["points"][0][1]
        self.assertEqual(nan, "NaN")

    def test_malformed_json(self):
        self.assert_rejected(400, b'{"v": 1, "records": [', r"body:1:\d+")

    def test_not_an_object(self):
        self.assert_rejected(400, b"[1,2]", r"expected a JSON object")

    def test_wrong_version(self):
        self.assert_rejected(400, self.batch([], v=99), r"version 99")

    def test_wrong_token(self):
        self.assert_rejected(401, self.batch([self.metric()]), r"token", token="nope")
        self.assert_rejected(401, self.batch([self.metric()]), r"token", token=API_TOKEN)

    def test_body_over_limit(self):
        big = self.batch([self.metric(labels={"pad": "x" * 70000})])
        self.assert_rejected(413, big, r"max_body")

    def test_chunked_body_over_limit(self):
        # No Content-Length: the limit must hold while reading.
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        chunk = b"x" * 16384
        req = (b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
               + AGENT_TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.sendall(req)
        try:
            for _ in range(8):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = s.recv(4096)
        s.close()
        self.assertIn(b" 413 ", resp.split(b"\r\n")[0])
        ok, _ = self.ingest(self.batch([self.metric()]))
        self.assertEqual(ok, 200)

    def test_too_many_records(self):
        self.assert_rejected(413, self.batch([self.metric()] * 101), r"limit is 100")

    def test_unknown_record_type(self):
        self.assert_rejected(422, self.batch([self.metric(), {"type": "bogus", "ts": now_ms()}]),
                             r"records\[1\]\.type: unknown record type 'bogus'")

    def test_absurd_timestamps(self):
        self.assert_rejected(422, self.batch([self.metric(ts=99999)]),
                             r"records\[0\]\.ts: 99999 is outside the accepted window")
        self.assert_rejected(422, self.batch([self.metric(ts=now_ms() + 86400000)]),
                             r"records\[0\]\.ts")

    def test_invalid_names_and_values(self):
        self.assert_rejected(422, self.batch([self.metric(name="1bad")]), r"records\[0\]\.name")
        self.assert_rejected(422, self.batch([self.metric(labels={"__x": "y"})]),
                             r"records\[0\]\.labels\.__x")
        self.assert_rejected(422, self.batch([self.metric(labels={"a": 3})]),
                             r"records\[0\]\.labels\.a: expected a string")
        self.assert_rejected(422, self.batch([self.metric(value="lots")]), r"records\[0\]\.value")

    def test_batch_is_atomic(self):
        status, _ = self.ingest(self.batch([self.metric(name="m_atomic"), {"type": "x"}]))
        self.assertEqual(status, 422)
        self.assertEqual(self.srv.api("/api/v1/query?name=m_atomic&from=1h")["series"], [])

    def test_unknown_agent(self):
        b = self.batch([self.metric()], agent_id="f" * 32)
        self.assert_rejected(409, b, r"not registered")

    def test_bad_agent_id(self):
        self.assert_rejected(400, self.batch([self.metric()], agent_id="../etc"), r"agent_id")

    def test_api_errors(self):
        st, body = http("GET", f"{self.srv.url}/api/v1/agents")
        self.assertEqual(st, 401)
        st, body = http("GET", f"{self.srv.url}/api/v1/agents", token=AGENT_TOKEN)
        self.assertEqual(st, 401)
        st, body = http("GET", f"{self.srv.url}/api/v1/nope", token=API_TOKEN)
        self.assertEqual((st, body["error"]), (404, "not found"))
        st, body = http("DELETE", f"{self.srv.url}/api/v1/agents", token=API_TOKEN)
        self.assertEqual(st, 405)
        st, body = http("GET", f"{self.srv.url}/api/v1/query?name=x&step=often", token=API_TOKEN)
        self.assertEqual(st, 400)
        self.assertIn("step", body["detail"])
        st, body = http("GET", f"{self.srv.url}/api/v1/query?name=x&from=30d&step=1s",
                        token=API_TOKEN)
        self.assertEqual(st, 400)
        self.assertIn("max_points", body["detail"])
        st, body = http("GET", f"{self.srv.url}/api/v1/series?match=novalue", token=API_TOKEN)
        self.assertEqual(st, 400)
        st, body = http("PUT", f"{self.srv.url}/api/v1/agents/{AID}", token=AGENT_TOKEN,
                        body={"v": 1, "agent_id": AID})
        self.assertEqual(st, 400)
        self.assertIn("host", body["detail"])

    def test_heartbeat_unknown_agent_is_404(self):
        st, body = http("POST", f"{self.srv.url}/api/v1/agents/{'e' * 32}/heartbeat",
                        token=AGENT_TOKEN, body={"v": 1, "ts": now_ms()})
        self.assertEqual(st, 404)

    def test_self_metrics(self):
        self.ingest(self.batch([self.metric()]))
        self.ingest(b"garbage")
        st, text = http("GET", f"{self.srv.url}/metrics")
        self.assertEqual(st, 200)
        self.assertRegex(text, r"xluo_ingest_samples_total [1-9]")
        self.assertRegex(text, r'xluo_ingest_rejected_total\{reason="parse"\} [1-9]')
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+]+$')


if __name__ == "__main__":
    unittest.main(verbosity=2)
