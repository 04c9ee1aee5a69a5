"""Fault matrix (issue 4, "nothing lost"): the filesystem of the agent's
outbox fills up. The outbox lives on a 4 MiB tmpfs (we run as root; the test
is skipped when mount fails); the server is stopped so batches pile up:

1. the outbox fills up to its max_size: the agent logs "outbox full",
   pauses and keeps running;
2. a junk file fills the rest of the tmpfs, so whatever the outbox still
   writes fails with ENOSPC: the agent keeps running;
3. the junk is deleted and the server started: every line written so far
   is stored exactly once;
4. the server is stopped again and the tmpfs filled while the outbox is
   below its max_size, so its own appends fail with ENOSPC; then the junk
   is deleted and the server started: every line stored exactly once, and
   no collection counter value twice (metrics may be dropped, counted).

XLUO_FAULT_SEED=N replays a run's fault schedule."""
import errno
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FaultCase, Writer, counter_points, tail_input, wait_for, \
    wait_lines_exactly  # noqa: E402

TMPFS = "4m"
MAX_SIZE = 2 << 20
SEGMENT = 256 << 10


def used(path):
    v = os.statvfs(path)
    return (v.f_blocks - v.f_bfree) * v.f_frsize


def fill(path):
    """Write a junk file at path until the filesystem is full; its size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n = 0
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            chunk = b"j" * size
            while True:
                try:
                    n += os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return n


class Disk(FaultCase):
    def setUp(self):
        super().setUp()
        self.mnt = self.path("outbox")
        os.makedirs(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS}", "tmpfs", self.mnt],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs for the outbox: "
                          f"{(r.stderr or r.stdout).strip()} (exit {r.returncode})")
        self.mounted = True

    def tearDown(self):
        if getattr(self, "mounted", False):
            # Lazy: detached at once even while the agent still has files
            # open; the tmp dir can then be removed.
            r = subprocess.run(["umount", "-l", self.mnt], capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0:
                print(f"umount {self.mnt}: {r.stderr.strip()}", file=sys.stderr)
        super().tearDown()

    def test_outbox_filesystem_full(self):
        srv = self.server().start_fg()
        os.makedirs(self.path("logs"))
        log = self.path("logs", "app.log")
        w = Writer(log, "d", noise=True)  # hard to compress
        self.addCleanup(w.close)
        cfg = self.agent_config(
            self.TUNING.replace("compression: zstd", "compression: none") +
            f"outbox: {{enabled: true, dir: {self.mnt}, max_size: {MAX_SIZE >> 10}KiB, "
            f"segment_size: {SEGMENT >> 10}KiB, sync: always, metrics_backlog: 256KiB}}",
            required=("outbox.enabled", "outbox.dir", "outbox.max_size", "outbox.segment_size",
                      "outbox.metrics_backlog"))
        ag = self.agent([srv.url], interval="1s",
                        inputs=tail_input("app", [log], **{"from": "head"}), extra=cfg)
        ag.start_fg()
        wait_for(lambda: srv.api("/api/v1/agents")["agents"], 30, "agent registered")
        w.write(1000)
        wait_lines_exactly(w.expected(), srv, timeout=30, settle=0, context=self.context)
        base = used(self.mnt)
        junk = os.path.join(self.mnt, "junk")

        # 1. The outbox fills up to its max_size: "outbox full". While lines
        # keep coming it stops growing, and the agent has said why.
        srv.stop()
        w.start(rate=5000)
        samples = []

        def full():
            samples.append((time.monotonic(), used(self.mnt)))
            recent = [u for t, u in samples if t >= samples[-1][0] - 3]
            return (samples[-1][0] - samples[0][0] >= 3 and len(set(recent)) == 1
                    and "outbox full" in ag.log())
        try:
            wait_for(full, 60, f"the outbox to stop growing with 'outbox full' logged "
                     f"({used(self.mnt)} B used on {self.mnt}; 'outbox full' "
                     f"{'' if 'outbox full' in ag.log() else 'not '}logged)", interval=0.25)
        finally:
            w.stop()
        self.assert_alive(ag, "with its outbox full")
        on_disk = used(self.mnt) - base
        self.assertLessEqual(on_disk, MAX_SIZE + SEGMENT + (256 << 10),
                             f"the outbox holds {on_disk} B with max_size {MAX_SIZE} B")

        # 2. The rest of the filesystem too: whatever the outbox still writes
        # (metrics, its own state) fails with ENOSPC.
        junk_size = fill(junk)
        w.write(1000)
        time.sleep(3)
        self.assert_alive(ag, "with its outbox full and its filesystem full")
        self.notes.append(f"outbox {on_disk} B of max_size {MAX_SIZE} B at 'outbox full', "
                          f"then junk {junk_size} B")

        # 3. Room again, server back: everything arrives.
        os.unlink(junk)
        srv.start_fg()
        wait_lines_exactly(w.expected(), srv, timeout=60, context=self.context)

        # 4. ENOSPC while the outbox is below its max_size: its own appends
        # fail. Then room again, server back.
        srv.stop()
        low = used(self.mnt)
        w.start(rate=5000)
        try:
            wait_for(lambda: used(self.mnt) >= low + (512 << 10), 30,
                     f"the outbox to grow by 512 KiB on {self.mnt} (from {low} B)")
        finally:
            w.stop()
        junk_size = fill(junk)
        w.write(3000)
        time.sleep(4)  # the agent reads them and fails to append them to its outbox
        self.assert_alive(ag, "with its outbox's filesystem full below max_size")
        text = ag.log()
        self.notes.append(f"ENOSPC below max_size: outbox {used(self.mnt) - junk_size - base} B, "
                          f"junk {junk_size} B; the agent logged "
                          + ", ".join(f"{m!r}: {m in text}" for m in
                                      ("No space left on device", "ENOSPC", "outbox full")))
        os.unlink(junk)
        srv.start_fg()
        end_ms = int(time.time() * 1000)
        wait_lines_exactly(w.expected(), srv, timeout=60, context=self.context)
        self.notes.append(f"{w.n} lines in all")
        # Metrics may have been dropped (metrics_backlog, counted), never
        # stored twice.
        wait_for(lambda: any(p[0] >= end_ms for _, pts in counter_points(srv) for p in pts), 30,
                 "the agent's counter after the server came back")
        pts = [p for _, s in counter_points(srv) for p in s]
        values = [int(v) for _, v in pts]
        self.assertEqual(len(values), len(set(values)),
                         f"counter values stored twice: "
                         f"{sorted(v for v in set(values) if values.count(v) > 1)[:10]}")
        self.assertEqual(len(pts), len({t for t, _ in pts}), "two counter points at one ts")
        gaps = max(values) - min(values) + 1 - len(values)
        stats = srv.api("/api/v1/agents")["agents"][0].get("stats", {})
        self.notes.append(f"counter: {len(values)} points, {gaps} values missing; agent stats "
                          f"{stats}")
        if "records_dropped" in stats:  # heartbeat stats, docs/delivery.md
            self.assertLessEqual(gaps, stats["records_dropped"],
                                 f"{gaps} collections missing, more than the {stats} records the "
                                 f"agent counts as dropped")
        if "outbox_write_errors" in stats:
            self.assertGreater(stats["outbox_write_errors"], 0,
                               f"the outbox never failed a write: was ENOSPC reached? {stats}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
