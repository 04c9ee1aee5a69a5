"""Daemon verbs of xluo-server and xluo-agent: start, stop, status, restart,
stale pidfile, double start, run/debug, version, check-config."""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, Server, TestCase, binary, free_port, http, wait_for  # noqa: E402


def alive(pid):
    """True while pid runs (a zombie has finished: in a container nobody may
    reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


class DaemonVerbs(TestCase):
    def check_lifecycle(self, d):
        pidfile = os.path.join(d.prefix, "run", f"{d.name}.pid")
        self.assertEqual(d.cmd("status").returncode, 3)
        r = d.cmd("start")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"started \(pid \d+")
        pid = int(open(pidfile).read())
        self.assertTrue(alive(pid))
        st = d.cmd("status")
        self.assertEqual(st.returncode, 0)
        self.assertIn(str(pid), st.stdout)
        # a second start is refused and leaves the first one running
        r = d.cmd("start")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already running", r.stderr)
        self.assertTrue(alive(pid))
        # restart gives a new process
        r = d.cmd("restart")
        self.assertEqual(r.returncode, 0, r.stderr)
        pid2 = int(open(pidfile).read())
        self.assertNotEqual(pid, pid2)
        self.assertEqual(d.cmd("status").returncode, 0)
        r = d.cmd("stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stopped", r.stdout)
        self.assertFalse(os.path.exists(pidfile))
        self.assertFalse(alive(pid2), "stop returned while the process still runs")
        self.assertEqual(d.cmd("status").returncode, 3)
        # logs went to log/
        log = open(os.path.join(d.prefix, "log", f"{d.name}.log")).read()
        self.assertIn("starting", log)
        self.assertIn("stopped", log)

    def test_server_lifecycle(self):
        self.check_lifecycle(self.server())

    def test_agent_lifecycle(self):
        # The agent needs no reachable server to run.
        self.check_lifecycle(self.agent([f"http://127.0.0.1:{free_port()}"]))

    def test_stale_pidfile(self):
        s = self.server()
        os.makedirs(os.path.join(s.prefix, "run"), exist_ok=True)
        pidfile = os.path.join(s.prefix, "run", "xluo-server.pid")
        # a pid that is not ours and holds no lock: stale
        with open(pidfile, "w") as f:
            f.write("999999\n")
        st = s.cmd("status")
        self.assertEqual(st.returncode, 1, st.stdout)
        self.assertIn("pidfile", st.stdout)
        r = s.cmd("start")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(s.cmd("status").returncode, 0)
        self.assertEqual(s.cmd("stop").returncode, 0)

    def test_stop_when_not_running(self):
        s = self.server()
        r = s.cmd("stop")
        self.assertEqual(r.returncode, 0)
        self.assertIn("not running", r.stdout)

    def test_start_reports_bind_failure(self):
        # Occupy the port: start must fail and say why, not claim success.
        import socket
        s = self.server()
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        blocker.bind(("127.0.0.1", s.port))
        blocker.listen()
        try:
            r = s.cmd("start")
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot listen", r.stderr)
            self.assertEqual(s.cmd("status").returncode, 3)
        finally:
            blocker.close()

    def test_run_foreground_and_sigterm(self):
        s = self.server().start_fg("run")
        self.assertEqual(s.cmd("status").returncode, 0)
        self.assertEqual(s.stop(signal.SIGTERM), 0)
        self.assertIn("stopped", s.log())

    def test_debug_logs_debug_level(self):
        s = self.server().start_fg("debug")
        s.stop()
        a = self.agent([s.url])
        a.start_fg("debug")
        wait_for(lambda: " DEBUG " in a.log(), 10, "a DEBUG line in the agent's output")
        a.stop()

    def test_version(self):
        for name in ("xluo-server", "xluo-agent"):
            r = subprocess.run([binary(name), "version"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, rf"^{name} \d+\.\d+\.\d+")

    def test_unknown_verb(self):
        r = subprocess.run([binary("xluo-agent"), "frobnicate"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)


class CheckConfig(TestCase):
    def check(self, daemon_cls, text, *args):
        prefix = self.path("cc")
        os.makedirs(os.path.join(prefix, "conf"), exist_ok=True)
        name = "xluo-server" if daemon_cls is Server else "xluo-agent"
        conf = os.path.join(prefix, "conf", "server.yaml" if daemon_cls is Server else "agent.yaml")
        with open(conf, "w") as f:
            f.write(text)
        return subprocess.run([binary(name), "-p", prefix, "check-config"],
                              capture_output=True, text=True)

    def assert_error(self, cls, text, line, pattern):
        r = self.check(cls, text)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stderr, rf"\.yaml:{line}(:\d+)?: .*{pattern}", r.stderr)

    def test_good_configs(self):
        r = self.check(Server, "listen: 127.0.0.1:1\nstore:\n  sync: none\n  retention: 2d\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        r = self.check(Agent, "servers: [http://a:1, https://b]\nlabels: {role: web}\n"
                              "inputs:\n  system: {interval: 500ms, per_cpu: true}\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        # an empty file is every default
        self.assertEqual(self.check(Agent, "").returncode, 0)

    def test_unknown_key(self):
        self.assert_error(Server, "listen: 127.0.0.1:1\nlisten_port: 3\n", 2,
                          "unknown key 'listen_port'")
        self.assert_error(Agent, "inputs:\n  system:\n    intervl: 1s\n", 3,
                          "unknown key 'inputs.system.intervl'")

    def test_wrong_type_and_range(self):
        self.assert_error(Agent, "inputs:\n  system:\n    interval: soon\n", 3,
                          "inputs.system.interval: expected a duration")
        self.assert_error(Server, "threads: 0\n", 1, "out of range")
        self.assert_error(Server, "max_body: lots\n", 1, "expected a size")
        self.assert_error(Server, "store:\n  sync: sometimes\n", 2, "not one of always\\|none")
        self.assert_error(Agent, "servers: [ftp://x]\n", 1, "must start with http")
        self.assert_error(Agent, "labels: {__x: y}\n", 1, "not a usable label name")
        self.assert_error(Server, "listen: nowhere\n", 1, "host:port")

    def test_yaml_syntax_error(self):
        self.assert_error(Server, "listen: 127.0.0.1:1\nstore: [unclosed\n", 3, "")

    def test_duplicate_key(self):
        self.assert_error(Server, "threads: 2\nthreads: 3\n", 2, "duplicate key")

    def test_missing_explicit_config(self):
        r = subprocess.run([binary("xluo-server"), "-c", self.path("nope.yaml"), "check-config"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope.yaml", r.stderr)

    def test_start_refuses_bad_config(self):
        s = self.server(extra="bogus: 1\n")
        r = s.cmd("start")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown key 'bogus'", r.stderr)
        self.assertEqual(s.cmd("status").returncode, 3)

    def test_help_config_documents_every_key(self):
        r = subprocess.run([binary("xluo-agent"), "help-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for key in ("servers:", "token:", "heartbeat_interval:", "interval: 10s"):
            self.assertIn(key, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
