"""Fault matrix (issue 4, "nothing lost"): kill -9 of the agent and of the
server at random moments while lines are written and shipped; at the end
the server stores every line written exactly once.

XLUO_FAULT_SEED=N replays a run's fault schedule (printed on stderr and in
failure messages)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FaultCase, Writer, tail_input, wait_counter, wait_for, \
    wait_lines_exactly  # noqa: E402

RATE = 10000  # lines/s: full speed in chunks of 200, paced so a run stays bounded

OUTBOX = "outbox: {enabled: true, sync: always}"


class Kill(FaultCase):
    def start(self):
        self.srv = self.server().start_fg()
        os.makedirs(self.path("logs"))
        self.log = self.path("logs", "app.log")
        self.w = Writer(self.log, "k")
        self.addCleanup(self.w.close)
        self.ag = self.agent([self.srv.url], interval="1s",
                             inputs=tail_input("app", [self.log], **{"from": "head"}),
                             extra=self.agent_config(self.TUNING + OUTBOX))
        self.ag.start_fg()
        wait_for(lambda: self.srv.api("/api/v1/agents")["agents"], 30, "agent registered")

    def test_agent_kill9_at_random_moments(self):
        """10 rounds: the agent is killed 0.3-1.5 s after it (re)started,
        while the writer appends; it restarts at once."""
        self.start()
        self.w.start(rate=RATE)
        kills = []
        for _ in range(10):
            time.sleep(self.rng.uniform(0.3, 1.5))
            self.assert_alive(self.ag, "before a kill")
            kills.append(self.w.n)
            self.ag.kill()
            self.ag.start_fg()
        time.sleep(1.0)
        self.w.stop()
        self.notes.append(f"{self.w.n} lines; killed at lines {kills}")
        wait_lines_exactly(self.w.expected(), self.srv, timeout=120, context=self.context)

    def test_server_kill9_at_random_moments(self):
        """5 rounds: the server is killed 0.5-2 s after it (re)started while
        the agent ships lines and metrics; it restarts at once. The agent is
        never restarted, so its counter must be stored without a gap."""
        self.start()
        self.w.start(rate=RATE)
        for _ in range(5):
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.srv.kill()
            self.srv.start_fg()
        time.sleep(1.0)
        self.w.stop()
        end_ms = int(time.time() * 1000)
        self.assert_alive(self.ag, "after the server kills")
        wait_lines_exactly(self.w.expected(), self.srv, timeout=120, context=self.context)
        wait_counter(self.srv, end_ms, context=self.context)


if __name__ == "__main__":
    unittest.main(verbosity=2)
