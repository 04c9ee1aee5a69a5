"""The metrics slice end to end: a real agent collects host metrics and ships
them to a real server; the API and the CLI show them; agents go offline."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TestCase, cli, wait_for  # noqa: E402


def meminfo_total_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


class MetricsSlice(TestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server(extra="offline_after_missed: 2\n").start_fg()
        self.ag = self.agent([self.srv.url], extra="labels: {role: web, dc: test}\n")
        self.ag.start_fg()
        self.agent_id = wait_for(lambda: self.online_agent(), 20, "agent online")["id"]

    def online_agent(self):
        agents = self.srv.api("/api/v1/agents")["agents"]
        return agents[0] if agents and agents[0]["status"] == "online" else None

    def query(self, name, params=""):
        return self.srv.api(f"/api/v1/query?name={name}&from=5m{params}")

    def wait_samples(self, name, n=1, params=""):
        def have():
            r = self.query(name, params)
            return r if r["series"] and len(r["series"][0]["points"]) >= n else None
        return wait_for(have, 30, f"{n} samples of {name}")

    def test_agent_registers_with_identity(self):
        a = self.srv.api(f"/api/v1/agents/{self.agent_id}")
        self.assertEqual(a["id"], self.ag.agent_id())
        self.assertEqual(len(a["id"]), 32)
        self.assertEqual(a["labels"], {"role": "web", "dc": "test"})
        self.assertEqual(a["host"], os.uname().nodename)
        self.assertRegex(a["ip"], r"^\d+\.\d+\.\d+\.\d+$")
        self.assertEqual(a["heartbeat_interval_ms"], 1000)

    def test_metrics_have_sane_values(self):
        mem = self.wait_samples("node_memory_total_bytes")
        s = mem["series"][0]
        self.assertEqual(s["labels"]["host"], os.uname().nodename)
        self.assertEqual(s["labels"]["role"], "web")
        self.assertAlmostEqual(s["points"][-1][1], meminfo_total_bytes(), delta=64 << 20)
        # CPU ratios need two collections (rates)
        cpu = self.wait_samples("node_cpu_usage_ratio", 1)
        for _, v in cpu["series"][0]["points"]:
            self.assertGreaterEqual(v, 0.0)
            self.assertLessEqual(v, 1.0)
        load = self.wait_samples("node_load1")
        self.assertGreaterEqual(load["series"][0]["points"][-1][1], 0.0)
        up = self.wait_samples("node_uptime_seconds")
        with open("/proc/uptime") as f:
            self.assertAlmostEqual(up["series"][0]["points"][-1][1], float(f.read().split()[0]),
                                   delta=30)
        procs = self.wait_samples("node_processes_pids")
        self.assertGreater(procs["series"][0]["points"][-1][1], 1)
        fs = self.wait_samples("node_filesystem_used_ratio")
        for series in fs["series"]:
            self.assertIn("mountpoint", series["labels"])
            self.assertNotIn(series["labels"].get("fstype"), ("proc", "sysfs", "cgroup2"))
        net = self.wait_samples("node_network_receive_bytes_per_second")
        self.assertTrue(any(x["labels"].get("interface") == "lo" for x in net["series"]))

    def test_names_series_and_aggregation(self):
        self.wait_samples("node_load1", 3)
        names = {m["name"]: m["series"] for m in self.srv.api("/api/v1/metrics")["metrics"]}
        for n in ("node_load1", "node_load5", "node_load15", "node_memory_available_bytes",
                  "node_cpu_mode_ratio", "node_swap_total_bytes", "node_processes_threads"):
            self.assertIn(n, names)
        self.assertEqual(names["node_load1"], 1)
        self.assertGreaterEqual(names["node_cpu_mode_ratio"], 4)
        modes = self.srv.api("/api/v1/series?name=node_cpu_mode_ratio")["series"]
        self.assertIn("user", {s["labels"]["mode"] for s in modes})
        # selector: != excludes
        r = self.srv.api("/api/v1/series?name=node_cpu_mode_ratio&match=mode!=user")["series"]
        self.assertNotIn("user", {s["labels"]["mode"] for s in r})
        self.assertEqual(len(r), len(modes) - 1)
        # host filter with a wrong host gives nothing
        self.assertEqual(self.srv.api("/api/v1/metrics?host=nosuchhost")["metrics"], [])
        # aggregated: a 1h step folds every sample into one bucket
        raw = self.query("node_load1")["series"][0]["points"]
        agg = self.query("node_load1", "&step=1h&agg=max")["series"][0]["points"]
        self.assertEqual(len(agg), 1 if raw[0][0] // 3600000 == raw[-1][0] // 3600000 else 2)
        self.assertAlmostEqual(max(v for _, v in agg), max(v for _, v in raw), places=6)
        cnt = self.query("node_load1", "&step=1h&agg=count")["series"][0]["points"]
        self.assertEqual(sum(v for _, v in cnt), len(raw))

    def test_cli_shows_agents_metrics_and_query(self):
        self.wait_samples("node_load1", 2)
        r = cli(self.srv, "agents")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"HOST\s+ID\s+IP")
        self.assertIn(self.agent_id[:8], r.stdout)
        self.assertIn("online", r.stdout)
        r = cli(self.srv, "metrics", "--host", os.uname().nodename)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("node_load1", r.stdout)
        r = cli(self.srv, "query", "node_load1", "--since", "5m")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?\s+\d")
        r = cli(self.srv, "--json", "agents")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.agent_id, r.stdout)
        r = cli(self.srv, "agents", token="wrong")
        self.assertEqual(r.returncode, 2)
        self.assertIn("token", r.stderr)

    def test_agent_goes_offline_and_back(self):
        self.ag.stop()
        # heartbeat 1s, offline after 2 missed
        wait_for(lambda: self.srv.api("/api/v1/agents")["agents"][0]["status"] == "offline",
                 15, "agent offline")
        r = cli(self.srv, "agents")
        self.assertIn("offline", r.stdout)
        self.ag.start_fg()
        wait_for(lambda: self.online_agent(), 15, "agent online again")
        # same identity after restart
        self.assertEqual(len(self.srv.api("/api/v1/agents")["agents"]), 1)

    def test_server_restart_keeps_data_and_agents(self):
        self.wait_samples("node_load1", 2)
        before = len(self.query("node_load1")["series"][0]["points"])
        self.srv.stop()
        self.srv.start_fg()
        after = self.query("node_load1")["series"][0]["points"]
        self.assertGreaterEqual(len(after), before)
        self.assertEqual(len({t for t, _ in after}), len(after), "duplicate timestamps")
        self.assertEqual(self.srv.api("/api/v1/agents")["agents"][0]["id"], self.agent_id)
        # the agent keeps shipping to the restarted server
        self.wait_samples("node_load1", before + 2)

    def test_server_kill9_loses_nothing_acknowledged(self):
        self.wait_samples("node_load1", 3)
        before = self.query("node_load1")["series"][0]["points"]
        self.srv.kill()
        self.srv.start_fg()
        after = self.query("node_load1")["series"][0]["points"]
        self.assertTrue(set(map(tuple, before)) <= set(map(tuple, after)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
