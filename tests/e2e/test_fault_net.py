"""Fault matrix (issue 4, "nothing lost"): the network between agent and
server misbehaves (tests/e2e/tcpproxy.py in between): delays, a stall longer
than the agent's request_timeout, connections reset at once, after some
bytes and at random, connections refused; then it works again and the server
stores every line written exactly once, and the agent's collection counter
without a gap.

XLUO_FAULT_SEED=N replays a run's fault schedule."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FaultCase, Writer, tail_input, wait_counter, wait_for, \
    wait_lines_exactly  # noqa: E402
from tcpproxy import TcpProxy  # noqa: E402

OUTBOX = "outbox: {enabled: true, sync: always}"


class Network(FaultCase):
    def test_delay_stall_reset_refuse_then_pass(self):
        srv = self.server().start_fg()
        proxy = TcpProxy(srv.port, seed=self.seed)
        self.addCleanup(proxy.close)
        os.makedirs(self.path("logs"))
        log = self.path("logs", "app.log")
        w = Writer(log, "n")
        self.addCleanup(w.close)
        ag = self.agent([proxy.url], interval="1s",
                        inputs=tail_input("app", [log], **{"from": "head"}),
                        extra=self.agent_config(self.TUNING + OUTBOX))
        ag.start_fg()
        wait_for(lambda: srv.api("/api/v1/agents")["agents"], 30, "agent registered")
        w.start(rate=4000)
        # (what, set the mode, seconds); request_timeout is 3s
        phases = [
            ("pass", proxy.passthrough, 2),
            ("delay 200ms per chunk", lambda: proxy.delay(200), 4),
            ("stall 6s", proxy.stall, 6),
            ("reset at random, p=0.3 per chunk", lambda: proxy.reset(probability=0.3), 4),
            ("reset after 3000 bytes", lambda: proxy.reset(after_bytes=3000), 3),
            ("reset at once", proxy.reset, 2),
            ("refuse", proxy.drop, 4),
            ("delay 50ms per chunk", lambda: proxy.delay(50), 2),
        ]
        log_phases = []
        for what, mode, secs in phases:
            mode()
            time.sleep(secs * self.rng.uniform(0.8, 1.2))
            log_phases.append(f"{what}: {proxy.stats()}")
            self.assert_alive(ag, f"after phase {what}")
        proxy.passthrough()
        w.stop()
        end_ms = int(time.time() * 1000)
        self.notes.append(f"{w.n} lines; proxy after each phase: " + "; ".join(log_phases))

        def ctx():
            return f"proxy: {proxy.stats()}\n" + self.context()
        self.assertGreater(proxy.resets, 0, "the proxy reset no connection")
        wait_lines_exactly(w.expected(), srv, timeout=120, context=ctx)
        wait_counter(srv, end_ms, context=ctx)


if __name__ == "__main__":
    unittest.main(verbosity=2)
