"""The exec input and the agent's local endpoint end to end: real scripts
(seed 003's demo_cron.py, Debian's Nagios plugins, a Prometheus exporter
script, scripts that hang, flood, fail or cannot run) run by a real agent,
their results stored by a real server; applications push to the agent's
127.0.0.1 endpoint; /metrics is valid Prometheus text."""
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import unittest
import urllib.parse
from http.client import HTTPConnection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TestCase, cli, http, wait_for  # noqa: E402

PLUGINS = "/usr/lib/nagios/plugins"

# Seed 003's agent/cron/demo_cron.py, as its document describes it: print
# one JSON object with the required `type`.
DEMO_CRON = """#!/usr/bin/env python3
import json

def run():
    alarm = {"key1": "value1", "key2": "value2", "key3": "value3", "type": "demo"}
    print(json.dumps(alarm, indent=4))

if __name__ == "__main__":
    run()
"""

EXPORTER = """#!/bin/sh
cat <<'EOF'
# HELP app_queue_depth Jobs waiting.
# TYPE app_queue_depth gauge
app_queue_depth{queue="mail"} 17
app_queue_depth{queue="sms",note="a \\"quoted\\" value"} 3
# TYPE app_jobs_total counter
app_jobs_total 1234
EOF
"""


def script(path, text, mode=0o755):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class ExecInput(TestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server().start_fg()

    def start_agent(self, inputs, extra=""):
        self.ag = self.agent([self.srv.url], interval="", inputs=inputs, extra=extra)
        self.ag.start_fg()
        return self.ag

    def checks(self, **q):
        return self.srv.api("/api/v1/checks?" + urllib.parse.urlencode(q))["checks"]

    def check(self, name):
        for c in self.checks(name=name):
            return c
        return None

    def wait_check(self, name, pred=lambda c: True, timeout=30):
        return wait_for(lambda: (lambda c: c if c and pred(c) else None)(self.check(name)),
                        timeout, f"check {name}\n{self.ag.log()}")

    def events(self, **q):
        q.setdefault("since", "1h")
        return self.srv.api("/api/v1/events?" + urllib.parse.urlencode(q))["events"]

    def series(self, name, **labels):
        q = {"name": name, "from": "5m"}
        r = self.srv.api("/api/v1/query?" + urllib.parse.urlencode(q))["series"]
        return [s for s in r if all(s["labels"].get(k) == v for k, v in labels.items())]

    def test_seed003_demo_cron_dir(self):
        d = self.path("cron")
        os.makedirs(d)
        script(os.path.join(d, "demo_cron.py"), DEMO_CRON)
        script(os.path.join(d, "notes.txt.disabled"), "not a script\n", 0o644)
        self.start_agent(f"  exec:\n    - dir: {d}\n      interval: 1s\n")
        ev = wait_for(lambda: self.events(type="demo"), 30, "demo event")
        self.assertEqual(ev[0]["type"], "demo")
        self.assertEqual(ev[0]["fields"], {"key1": "value1", "key2": "value2",
                                           "key3": "value3"})
        self.assertEqual(ev[0]["host"], os.uname().nodename)
        c = self.wait_check("demo_cron.py")
        self.assertEqual(c["state"], "ok")
        self.assertEqual(c["exit_code"], 0)
        self.assertEqual((c["interval_ms"], c["stale"]), (1000, False))
        # Runs again on its interval; the disabled file never shows.
        wait_for(lambda: len(self.events(type="demo")) >= 3, 30, "three runs")
        self.assertIsNone(self.check("notes.txt.disabled"))
        # A script added at run time is picked up at the next scan.
        script(os.path.join(d, "late.sh"), "#!/bin/sh\necho '{\"type\":\"late\",\"n\":1}'\n")
        wait_for(lambda: self.events(type="late"), 30, "event of a script added later")

    @unittest.skipUnless(os.path.exists(f"{PLUGINS}/check_load"),
                         "monitoring-plugins-basic is not installed "
                         "(apt-get install monitoring-plugins-basic)")
    def test_real_nagios_plugins(self):
        self.start_agent(
            "  exec:\n"
            f"    - command: [{PLUGINS}/check_load, -w, '100,100,100', -c, '200,200,200']\n"
            "      interval: 1s\n"
            f"    - command: [{PLUGINS}/check_disk, -w, '1%', -c, '1%', -p, /]\n"
            "      name: disk_root\n      interval: 1s\n"
            f"    - command: [{PLUGINS}/check_dummy, '1', 'disk almost full']\n"
            "      name: dummy\n      interval: 1s\n"
            f"    - command: [{PLUGINS}/check_dummy, '2', 'down']\n"
            "      name: dummy_crit\n      interval: 1s\n")
        load = self.wait_check("check_load")
        self.assertEqual(load["state"], "ok", load)
        self.assertIn("LOAD OK", load["output"])
        self.assertNotIn("|", load["output"])
        self.assertEqual(self.wait_check("dummy")["state"], "warning")
        self.assertIn("disk almost full", self.check("dummy")["output"])
        self.assertEqual(self.wait_check("dummy_crit")["state"], "critical")
        disk = self.wait_check("disk_root")
        self.assertIn(disk["state"], ("ok", "warning", "critical"))
        # Perfdata became metrics in base units.
        s = wait_for(lambda: self.series("check_perf_value", check="check_load", perf="load1"),
                     30, "load1 perfdata")
        self.assertGreaterEqual(s[0]["points"][-1][1], 0)
        self.assertEqual(self.series("check_perf_warn", check="check_load",
                                     perf="load1")[0]["points"][-1][1], 100)
        d = wait_for(lambda: self.series("check_perf_value", check="disk_root", perf="/"),
                     30, "disk perfdata")
        self.assertEqual(d[0]["labels"].get("unit"), "bytes")
        self.assertGreater(d[0]["points"][-1][1], 1 << 20)
        # The CLI filters by state.
        r = cli(self.srv, "checks", "--state", "critical")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dummy_crit", r.stdout)
        self.assertNotIn("check_load", r.stdout)

    @unittest.skipUnless(os.geteuid() == 0, "running scripts as another user needs root")
    def test_runs_as_configured_user_with_env_and_cwd(self):
        self.start_agent(
            "  exec:\n"
            "    - command: [/bin/sh, -c, 'echo \"$(id -un) $GREETING $HOME $(pwd)\"']\n"
            "      name: whoami\n      interval: 1s\n      user: nobody\n"
            "      cwd: /\n      env: {GREETING: hello}\n")
        c = self.wait_check("whoami")
        self.assertEqual(c["state"], "ok", c)
        self.assertEqual(c["output"], "nobody hello /nonexistent /")

    def test_prometheus_script(self):
        d = self.path("cron")
        os.makedirs(d)
        script(os.path.join(d, "exporter"), EXPORTER)
        self.start_agent(f"  exec:\n    - dir: {d}\n      interval: 1s\n")
        s = wait_for(lambda: self.series("app_queue_depth", queue="sms"), 30, "exposition")
        self.assertEqual(s[0]["labels"]["note"], 'a "quoted" value')
        self.assertEqual(s[0]["points"][-1][1], 3)
        self.assertEqual(self.series("app_jobs_total")[0]["points"][-1][1], 1234)
        self.assertEqual(self.wait_check("exporter")["state"], "ok")

    def test_bad_scripts_never_stall_the_others(self):
        d = self.path("cron")
        os.makedirs(d)
        marker = f"xluo-hang-{os.getpid()}-{id(self)}"
        # Hangs, with a child in its process group that must die too.
        script(os.path.join(d, "hang.sh"),
               f"#!/bin/bash\n(exec -a {marker} sleep 300) &\nexec sleep 300\n")
        script(os.path.join(d, "flood.sh"), "#!/bin/sh\nexec yes 'flood flood flood'\n")
        script(os.path.join(d, "noexec.sh"), "#!/bin/sh\necho hi\n", 0o644)
        script(os.path.join(d, "badjson.sh"), "#!/bin/sh\necho '{\"type\": \"x\", oops}'\n")
        script(os.path.join(d, "notype.sh"), "#!/bin/sh\necho '{\"a\": 1}'\n")
        script(os.path.join(d, "fail.sh"), "#!/bin/sh\necho 'it broke' >&2\nexit 3\n")
        script(os.path.join(d, "ok.sh"), "#!/bin/sh\necho '{\"type\":\"tick\"}'\n")
        self.start_agent(f"  exec:\n    - dir: {d}\n      interval: 1s\n      timeout: 2s\n"
                         "      max_output: 64KiB\n      concurrency: 8\n")
        t = self.wait_check("hang.sh", lambda c: c["state"] == "unknown")
        self.assertIn("timed out after 2s", t["output"])
        # Its whole group was killed.
        wait_for(lambda: subprocess.run(["pgrep", "-f", marker],
                                        capture_output=True).returncode == 1, 10,
                 "the hanging script's child to be killed")
        f = self.wait_check("flood.sh", lambda c: c["state"] == "unknown")
        self.assertIn("max_output", f["output"])
        n = self.wait_check("noexec.sh", lambda c: c["state"] == "unknown")
        self.assertIn("not executable", n["output"])
        b = self.wait_check("badjson.sh", lambda c: c["state"] == "unknown")
        self.assertIn("not valid json", b["output"])
        self.assertRegex(b["output"], r"line|byte|body")
        nt = self.wait_check("notype.sh", lambda c: c["state"] == "unknown")
        self.assertIn("type", nt["output"])
        fl = self.wait_check("fail.sh", lambda c: c["state"] == "unknown")
        self.assertIn("exited with status 3", fl["output"])
        self.assertIn("it broke", fl["output"])
        self.assertEqual(fl["exit_code"], 3)
        # Meanwhile the good script ran every second, hang or no hang.
        t0 = len(self.events(type="tick"))
        wait_for(lambda: len(self.events(type="tick")) >= t0 + 3, 20,
                 "ok.sh to keep running beside the bad ones")
        self.assertEqual(self.ag.proc.poll(), None, self.ag.log())

    def test_reload_applies_exec_changes(self):
        self.start_agent("  exec:\n    - command: [/bin/echo, '{\"type\":\"first\"}']\n"
                         "      interval: 1s\n")
        wait_for(lambda: self.events(type="first"), 30, "first command's event")
        # A broken config changes nothing.
        self.ag.rewrite([self.srv.url], interval="",
                        inputs="  exec:\n    - command: [relative/path]\n")
        self.ag.cmd("reload", check=True)
        wait_for(lambda: "must be an absolute path" in self.ag.log(), 10, "reload refused")
        self.ag.rewrite([self.srv.url], interval="",
                        inputs="  exec:\n    - command: [/bin/echo, '{\"type\":\"second\"}']\n"
                               "      interval: 1s\n")
        self.ag.cmd("reload", check=True)
        wait_for(lambda: self.events(type="second"), 30, "the new command's event")
        n = len(self.events(type="first"))
        time.sleep(2.5)
        self.assertEqual(len(self.events(type="first")), n, "the old command still runs")

    def test_reload_reaps_killed_scripts(self):
        """A reload kills the running scripts and reaps them: no zombies."""
        self.start_agent("  exec:\n    - command: [/bin/sleep, '100']\n"
                         "      name: slow\n      interval: 200ms\n      timeout: 60s\n")

        def children():
            out = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(self.ag.proc.pid)],
                                 capture_output=True, text=True).stdout.split("\n")
            return [line.split() for line in out if line.strip()]
        seen = set()
        for _ in range(3):
            pid = wait_for(lambda: next((p for p, st in children()
                                         if not st.startswith("Z") and p not in seen), None),
                           10, "a new run of the script")
            seen.add(pid)
            self.ag.cmd("reload", check=True)
            # The killed run is reaped (a zombie would stay for good).
            wait_for(lambda: pid not in [p for p, _ in children()], 10,
                     f"run {pid} reaped after the reload")

    def test_odd_names_and_bytes(self):
        """A file name that cannot be a check name is skipped with a warning;
        output that is not UTF-8 is shipped sanitised, the batch not lost."""
        d = self.path("cron")
        os.makedirs(d)
        script(os.path.join(d, "bad\nname.sh"), "#!/bin/sh\necho '{\"type\":\"never\"}'\n")
        script(os.path.join(d, "latin1.sh"),
               "#!/bin/sh\nprintf 'WARNING caf\\351 \\001 %s\\n' $(head -c 30000 /dev/zero "
               "| tr '\\0' '\\351')\nexit 1\n")
        script(os.path.join(d, "ok.sh"), "#!/bin/sh\necho '{\"type\":\"tick\"}'\n")
        self.start_agent(f"  exec:\n    - dir: {d}\n      interval: 1s\n")
        c = self.wait_check("latin1.sh")
        self.assertEqual(c["state"], "warning", c)
        self.assertTrue(c["output"].startswith("WARNING caf? ? ???"), c["output"][:40])
        wait_for(lambda: self.events(type="tick"), 30, "the good script's events")
        wait_for(lambda: "is its check name" in self.ag.log(), 10, "the skipped-name warning")
        self.assertEqual(self.events(type="never"), [])
        st = self.ag.cmd("check-config")
        self.assertEqual(st.returncode, 0, st.stderr)

    def test_push_endpoint_and_local_metrics(self):
        self.start_agent("", extra="")
        base = self.ag.local_url
        wait_for(lambda: http("GET", base + "/healthz")[0] == 200, 20, "agent /healthz")
        st, h = http("GET", base + "/healthz")
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["agent_id"], self.ag.agent_id())
        body = "\n".join(json.dumps(o) for o in [
            {"type": "order", "id": 7, "amount": 12.5, "ts": int(time.time() * 1000)},
            {"type": "metric", "name": "app_orders_total", "value": 42,
             "labels": {"shop": "eu"}},
            {"type": "check", "name": "app_db", "state": "critical", "output": "db down"},
        ]).encode()
        st, r = http("POST", base + "/v1/push", body)
        self.assertEqual((st, r), (200, {"accepted": 3}))
        ev = wait_for(lambda: self.events(type="order"), 30, "pushed event")
        self.assertEqual(ev[0]["fields"], {"id": 7, "amount": 12.5})
        self.assertEqual(self.wait_check("app_db")["state"], "critical")
        s = wait_for(lambda: self.series("app_orders_total", shop="eu"), 30, "pushed metric")
        self.assertEqual(s[0]["points"][-1][1], 42)
        # Bad bodies: a clear 400 naming the place, nothing taken.
        st, r = http("POST", base + "/v1/push", b'[{"type":"ok"},{"nope":1}]')
        self.assertEqual(st, 400, r)
        self.assertIn("type", r["detail"])
        st, r = http("POST", base + "/v1/push", b'{"type": "metric", "name": "x y", "value": 1}')
        self.assertEqual(st, 400, r)
        st, r = http("POST", base + "/v1/push", b"x" * (2 << 20))
        self.assertEqual(st, 413, r)
        st, r = http("GET", base + "/v1/push")
        self.assertEqual(st, 405, r)
        st, r = http("GET", base + "/nope")
        self.assertEqual(st, 404, r)
        self.assertEqual(self.events(type="ok"), [])
        # /metrics: valid exposition with the agent's counters.
        text = wait_for(lambda: (lambda t: t if "xluo_agent_push_records_total 3" in t
                                 else None)(http("GET", base + "/metrics")[1]), 20,
                        "push counter on /metrics")
        assert_exposition(self, text)

    def test_local_endpoint_http(self):
        """The endpoint's own HTTP/1.1 server: curl's 100-continue and
        chunked uploads, keep-alive and pipelining, HEAD, malformed requests,
        the 64-connection limit."""
        if not shutil.which("curl"):
            self.fail("curl is not installed (apt-get install curl)")
        self.start_agent("", extra="")
        base = self.ag.local_url
        port = self.ag.local_port
        wait_for(lambda: http("GET", base + "/healthz")[0] == 200, 20, "agent /healthz")

        def curl(*args):
            r = subprocess.run(["curl", "-sS", "-v", "--max-time", "10", *args],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r

        # A 5 KiB body: curl asks Expect: 100-continue, the agent answers it.
        big = self.path("push.json")
        with open(big, "w") as f:
            for i in range(100):
                f.write(json.dumps({"type": "metric", "name": "curl_big", "value": i,
                                    "labels": {"i": f"{i:04d}"}}) + "\n")
        self.assertGreater(os.path.getsize(big), 5 * 1024)
        r = curl("-H", "Expect: 100-continue", "--data-binary", "@" + big, base + "/v1/push")
        self.assertIn("HTTP/1.1 100 Continue", r.stderr)
        self.assertEqual(json.loads(r.stdout), {"accepted": 100})
        # A chunked upload.
        r = curl("-H", "Transfer-Encoding: chunked", "--data-binary",
                 '{"type":"metric","name":"curl_chunked","value":7}', base + "/v1/push")
        self.assertIn("Transfer-Encoding: chunked", r.stderr)
        self.assertEqual(json.loads(r.stdout), {"accepted": 1})
        # Over max_body with Expect: 413 before the body is sent.
        huge = self.path("huge.json")
        with open(huge, "wb") as f:
            f.write(b" " * (2 << 20))
        r = curl("-H", "Expect: 100-continue", "--data-binary", "@" + huge,
                 "-o", "/dev/null", "-w", "%{http_code}", base + "/v1/push")
        self.assertEqual(r.stdout, "413")
        self.assertNotIn("100 Continue", r.stderr)
        s = wait_for(lambda: self.series("curl_chunked"), 30, "chunked push stored")
        self.assertEqual(s[0]["points"][-1][1], 7)
        wait_for(lambda: len(self.series("curl_big")) == 100, 30, "100 series of the big push")

        # Keep-alive: two requests, one connection.
        conn = HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        r1 = conn.getresponse()
        self.assertEqual(r1.status, 200)
        self.assertEqual(json.loads(r1.read())["status"], "ok")
        sock = conn.sock
        conn.request("POST", "/v1/push", body=b'{"type":"ka","n":1}',
                     headers={"Content-Type": "application/json"})
        r2 = conn.getresponse()
        self.assertEqual((r2.status, json.loads(r2.read())), (200, {"accepted": 1}))
        self.assertIs(conn.sock, sock, "the second request used a new connection")
        conn.request("HEAD", "/metrics")
        r3 = conn.getresponse()
        self.assertEqual(r3.status, 200)
        self.assertGreater(int(r3.getheader("Content-Length")), 0)
        self.assertEqual(r3.read(), b"")
        self.assertIs(conn.sock, sock)
        conn.close()

        def raw(data, shut=False):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as so:
                so.sendall(data)
                if shut:
                    so.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    b = so.recv(65536)
                    if not b:
                        return out
                    out += b

        # Pipelined: three requests in one write, answered in order (a bad
        # push keeps the connection); the last one asks to close.
        out = raw(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"POST /v1/push HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
                  b'{"nope":1}'
                  b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
        self.assertEqual(statuses, [b"200", b"400", b"404"], out)
        self.assertIn(b"Connection: close\r\n", out)
        # Malformed: 400 with a JSON body, then the connection closes.
        out = raw(b"THIS IS NOT HTTP\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 400 "), out)
        self.assertIn(b"Connection: close", head)
        self.assertIn(b"Content-Type: application/json", head)
        self.assertEqual(json.loads(body)["error"], "bad request")
        self.assertIn("request line", json.loads(body)["detail"])
        out = raw(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 414 "), out[:100])
        out = raw(b"GET /healthz HTTP/1.0\r\n\r\n", shut=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out[:100])

        # 64 connections at most: the 65th is closed at once.
        held = []
        try:
            for _ in range(64):
                so = socket.create_connection(("127.0.0.1", port), timeout=10)
                so.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                self.assertTrue(so.recv(65536).startswith(b"HTTP/1.1 200 "))
                held.append(so)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as so:
                try:
                    so.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                    got = so.recv(65536)
                except ConnectionResetError:
                    got = b""
                self.assertEqual(got, b"")
        finally:
            for so in held:
                so.close()
        wait_for(lambda: http("GET", base + "/healthz")[0] == 200, 20, "endpoint after the limit")
        self.assertEqual(self.ag.proc.poll(), None, self.ag.log())

    def test_push_answer_means_durable(self):
        """A 200 from /v1/push means the records are on disk: the agent
        killed right after it, with the server down, still delivers them."""
        self.start_agent("", extra="batch_max_age: 10s\n")
        base = self.ag.local_url
        wait_for(lambda: http("GET", base + "/healthz")[0] == 200, 20, "agent /healthz")
        self.srv.stop()
        body = "\n".join(json.dumps({"type": "durable", "n": i}) for i in range(500)).encode()
        st, r = http("POST", base + "/v1/push", body)
        self.assertEqual((st, r), (200, {"accepted": 500}))
        self.ag.kill()
        self.srv.start_fg()
        self.ag.start_fg()
        ev = wait_for(lambda: (lambda e: e if len(e) >= 500 else None)(
            self.events(type="durable", limit=1000)), 60, f"500 pushed events\n{self.ag.log()}")
        self.assertEqual(sorted(e["fields"]["n"] for e in ev), list(range(500)))

    def test_local_metrics_has_host_metrics(self):
        self.ag = self.agent([self.srv.url], interval="1s")
        self.ag.start_fg()
        base = self.ag.local_url
        # CPU ratios need two collections.
        text = wait_for(lambda: (lambda t: t if "node_cpu_mode_ratio{" in t else None)(
            http("GET", base + "/metrics")[1]), 20, "host metrics on /metrics")
        self.assertRegex(text, r"(?m)^node_load1 [0-9.]+$")
        assert_exposition(self, text)
        self.assertRegex(text, r"(?m)^# TYPE node_cpu_usage_ratio gauge$")
        self.assertRegex(text, r"(?m)^xluo_agent_collections_total \d+")


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? '
                    r'(-?[0-9.e+-]+|NaN|\+Inf|-Inf)$')


def assert_exposition(tc, text):
    """Every line is a # TYPE line or a sample; a family's TYPE comes once,
    before its samples, and its samples are together."""
    typed, seen, last = {}, set(), None
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            tc.assertNotIn(name, typed, f"line {i}: second TYPE for {name}")
            tc.assertIn(kind, ("gauge", "counter"))
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        tc.assertIsNotNone(m, f"line {i}: not a sample: {line!r}")
        name = m.group(1)
        tc.assertIn(name, typed, f"line {i}: {name} has no TYPE before it")
        if name != last:
            tc.assertNotIn(name, seen, f"line {i}: samples of {name} are not together")
            seen.add(name)
        last = name
        if typed[name] == "counter":
            tc.assertTrue(name.endswith("_total"))


if __name__ == "__main__":
    unittest.main()
