#!/usr/bin/env python3
"""Agent footprint: xluo-agent's `system` input beside collectd and
prometheus-node-exporter collecting the same host metrics, each at a 10 s
and a 1 s interval, all six processes at once for the same duration.

    python3 bench/footprint.py --build build [--seconds 300]

- xluo-agent ships to a real xluo-server started here (only the agent is
  measured);
- collectd (cpu with ReportByCpu false and ValuesPercentage true, memory,
  swap, load, df, disk, interface, processes, uptime) sends with its network
  plugin to a UDP socket this driver reads;
- node_exporter (cpu, meminfo, loadavg, filesystem, diskstats, netdev, stat,
  processes; exporter self-metrics off) is scraped by this driver over HTTP
  at the same interval (it collects when scraped).

Per process: RSS (VmRSS), peak RSS (VmHWM), PSS (smaps_rollup), CPU seconds
over the measured window and % of one core. Then, for each tool at 10 s,
where its resident memory is (per mapped object, from /proc/<pid>/smaps).
Each process has its own ports and directories; all of them are stopped
and removed at the end, also on Ctrl-C. Requires collectd-core and
prometheus-node-exporter (scripts/install-deps.sh --bench).
"""
import argparse
import json
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

COLLECTD = "/usr/sbin/collectd"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
NODE_COLLECTORS = ["cpu", "meminfo", "loadavg", "filesystem", "diskstats", "netdev", "stat",
                   "processes"]


def collectd_conf(d, name, interval, udp_port):
    return f"""# bench/footprint.py: the system metrics xluo-agent collects
Hostname "{name}"
FQDNLookup false
BaseDir "{d}"
PIDFile "{d}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval {interval}

LoadPlugin logfile
<Plugin logfile>
  LogLevel warning
  File "{d}/collectd.log"
  Timestamp true
</Plugin>

LoadPlugin cpu
<Plugin cpu>
  ReportByCpu false
  ReportByState true
  ValuesPercentage true
</Plugin>
LoadPlugin memory
LoadPlugin swap
LoadPlugin load
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin processes
LoadPlugin uptime

LoadPlugin network
<Plugin network>
  Server "127.0.0.1" "{udp_port}"
</Plugin>
"""


def agent_conf(server_url, name, interval):
    return (f"servers: [{server_url}]\n"
            f"token: {bl.AGENT_TOKEN}\n"
            f"hostname: {name}\n"
            f"log_level: warn\n"
            f"inputs:\n  system: {{interval: {interval}s}}\n")


class UdpSink(threading.Thread):
    """Reads (and counts) what the collectds send."""

    def __init__(self):
        super().__init__(daemon=True)
        self.socks, self.packets, self.bytes = {}, {}, {}
        self.stopping = False

    def add(self, name):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.socks[s] = name
        self.packets[name] = self.bytes[name] = 0
        return s.getsockname()[1]

    def run(self):
        while not self.stopping:
            r, _, _ = select.select(list(self.socks), [], [], 0.2)
            for s in r:
                data = s.recv(65535)
                name = self.socks[s]
                self.packets[name] += 1
                self.bytes[name] += len(data)

    def close(self):
        self.stopping = True
        if self.is_alive():
            self.join(2)
        for s in self.socks:
            s.close()


class Scraper(threading.Thread):
    """Scrapes one node_exporter every interval seconds, on a fixed grid."""

    def __init__(self, url, interval):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.ok = self.failed = self.bytes = self.samples = 0
        self.stopping = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.stopping.is_set():
            try:
                st, body = bl.http("GET", self.url, timeout=max(2, self.interval))
                if st == 200:
                    self.ok += 1
                    self.bytes += len(body)
                    self.samples = sum(1 for ln in body.splitlines()
                                       if ln and not ln.startswith(b"#"))
                else:
                    self.failed += 1
            except OSError:
                self.failed += 1
            nxt += self.interval
            self.stopping.wait(max(0, nxt - time.monotonic()))

    def close(self):
        self.stopping.set()
        self.join(5)


def xluo_points(server_url, host, since_ms):
    """Raw node_load1 points the server holds for host since since_ms."""
    st, body = bl.http("GET", f"{server_url}/api/v1/query?name=node_load1&host={host}"
                       f"&from={since_ms}", token=bl.API_TOKEN)
    if st != 200:
        return 0
    return sum(len(s["points"]) for s in json.loads(body)["series"])


def xluo_series(server_url, host):
    st, body = bl.http("GET", f"{server_url}/api/v1/metrics?host={host}", token=bl.API_TOKEN)
    if st != 200:
        return 0
    return sum(m["series"] for m in json.loads(body)["metrics"])


def start_all(args, procs, tmp, sink):
    """Start the server and the six measured processes; return (server_url,
    [(tool, interval, proc, extra)])."""
    srv, server_url = bl.start_server(procs, args.build, os.path.join(tmp, "xluo-server"))
    measured = []
    for iv in args.intervals:
        name = f"fp-xluo-{iv}s"
        d = os.path.join(tmp, name)
        os.makedirs(os.path.join(d, "conf"))
        with open(os.path.join(d, "conf", "agent.yaml"), "w") as f:
            f.write(agent_conf(server_url, name, iv))
        p = procs.start([bl.binary(args.build, "xluo-agent"), "-p", d, "run"],
                        os.path.join(d, "agent.out"))
        measured.append(("xluo-agent", iv, p, {"host": name}))

        name = f"fp-collectd-{iv}s"
        d = os.path.join(tmp, name)
        os.makedirs(d)
        udp = sink.add(name)
        conf = os.path.join(d, "collectd.conf")
        with open(conf, "w") as f:
            f.write(collectd_conf(d, name, iv, udp))
        p = procs.start([COLLECTD, "-f", "-C", conf], os.path.join(d, "collectd.out"))
        measured.append(("collectd", iv, p, {"sink": name}))

        name = f"fp-node-exporter-{iv}s"
        d = os.path.join(tmp, name)
        os.makedirs(d)
        nport = bl.free_port()
        argv = [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{nport}",
                "--collector.disable-defaults", "--web.disable-exporter-metrics",
                "--log.level=warn"] + [f"--collector.{c}" for c in NODE_COLLECTORS]
        p = procs.start(argv, os.path.join(d, "node_exporter.out"), cwd=d)
        measured.append(("node_exporter", iv, p,
                         {"scraper": Scraper(f"http://127.0.0.1:{nport}/metrics", iv)}))
    return server_url, measured


def produced(tool, extra, server_url, sink, since_ms):
    """How much this tool has delivered so far (0: nothing yet)."""
    if tool == "xluo-agent":
        return xluo_points(server_url, extra["host"], since_ms)
    if tool == "collectd":
        return sink.packets[extra["sink"]]
    return extra["scraper"].ok


def mib(kib):
    return kib / 1024.0


def print_results(rows, seconds):
    print(f"\nAgent footprint over {seconds:.0f} s, all six processes side by side "
          f"({bl.machine()}, xluo {bl.revision()})")
    hdr = ["tool", "interval", "RSS MiB", "peak RSS", "PSS MiB", "private", "CPU s",
           "% of a core", "delivered"]
    out = [hdr]
    for r in rows:
        out.append([r["tool"], f"{r['interval']} s", f"{mib(r['rss_kib']):.2f}",
                    f"{mib(r['hwm_kib']):.2f}", f"{mib(r['pss_kib']):.2f}",
                    f"{mib(r['private_kib']):.2f}", f"{r['cpu_s']:.3f}",
                    f"{r['cpu_pct']:.3f} %", r["delivered"]])
    widths = [max(len(row[i]) for row in out) for i in range(len(hdr))]
    for i, row in enumerate(out):
        print("  ".join(c.rjust(w) if j >= 2 else c.ljust(w)
                        for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("RSS, PSS and private (Private_Clean + Private_Dirty) at the end of the window; "
          "peak RSS is VmHWM over the whole life. PSS divides pages shared with other "
          "processes (here: the twin at the other interval, and any other user of the same "
          "libraries) by the number of sharers.")


def print_breakdown(tool, interval, objs, top=12):
    total = sum(o["Rss"] for o in objs)
    print(f"\nWhere {tool} ({interval} s) is resident: {mib(total):.2f} MiB RSS "
          f"in {len(objs)} mapped objects")
    print(f"  {'object':<44} {'RSS KiB':>8} {'PSS KiB':>8} {'private':>8} {'dirty':>6}")
    for o in objs[:top]:
        name = o["name"]
        name = name if len(name) <= 44 else "..." + name[-41:]
        print(f"  {name:<44} {o['Rss']:>8} {o['Pss']:>8} "
              f"{o['Private_Clean'] + o['Private_Dirty']:>8} {o['Private_Dirty']:>6}")
    rest = objs[top:]
    if rest:
        print(f"  {'(' + str(len(rest)) + ' more)':<44} {sum(o['Rss'] for o in rest):>8} "
              f"{sum(o['Pss'] for o in rest):>8} "
              f"{sum(o['Private_Clean'] + o['Private_Dirty'] for o in rest):>8} "
              f"{sum(o['Private_Dirty'] for o in rest):>6}")
    libs = [o for o in objs if ".so" in o["name"]]
    anon = [o for o in objs if o["name"].startswith("[") or o["name"] == "[anon]"]
    print(f"  shared libraries: {len(libs)} objects, {sum(o['Rss'] for o in libs)} KiB RSS "
          f"({sum(o['Private_Clean'] + o['Private_Dirty'] for o in libs)} KiB private: "
          f"relocations and data); heap/stack/anon: {sum(o['Rss'] for o in anon)} KiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(bl.ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=300, help="measured window (300)")
    ap.add_argument("--intervals", default="10,1", help="collection intervals in seconds")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.intervals = [int(x) for x in args.intervals.split(",")]
    for path in (COLLECTD, NODE_EXPORTER):
        if not os.access(path, os.X_OK):
            print(f"footprint: {path} is missing: run scripts/install-deps.sh --bench",
                  file=sys.stderr)
            return 2
    bl.binary(args.build, "xluo-agent")
    tmp = tempfile.mkdtemp(prefix="xluo-bench-footprint-")
    sink = UdpSink()
    rows, breakdowns = [], []
    try:
        with bl.Procs() as procs:
            sink.start()
            started_ms = int(time.time() * 1000)
            server_url, measured = start_all(args, procs, tmp, sink)
            for tool, iv, p, extra in measured:
                if "scraper" in extra:
                    extra["scraper"].start()
            # Every process has delivered once before the window opens (a
            # tool that delivers nothing is measured all the same, and the
            # table says so).
            deadline = time.monotonic() + 60
            for tool, iv, p, extra in measured:
                while time.monotonic() < deadline:
                    if p.poll() is not None:
                        raise RuntimeError(f"{tool} exited {p.returncode}:\n"
                                           + bl.log_tail(p.log_path))
                    if produced(tool, extra, server_url, sink, started_ms) > 0:
                        break
                    time.sleep(0.2)
                else:
                    print(f"footprint: WARNING: nothing delivered by {tool} at {iv} s "
                          f"after 60 s", file=sys.stderr, flush=True)
            meters = [bl.CpuMeter(p.pid) for _, _, p, _ in measured]
            busy0 = bl.machine_busy()
            base = [produced(t, e, server_url, sink, started_ms) for t, _, _, e in measured]
            t_end = time.monotonic() + args.seconds
            rss_max = [0] * len(measured)
            print(f"footprint: measuring {len(measured)} processes for {args.seconds:.0f} s "
                  f"(in {tmp})", flush=True)
            next_report = time.monotonic() + 60
            while time.monotonic() < t_end:
                time.sleep(min(1.0, max(0, t_end - time.monotonic())))
                for i, (tool, iv, p, _) in enumerate(measured):
                    if p.poll() is not None:
                        raise RuntimeError(f"{tool} ({iv} s) exited {p.returncode}:\n"
                                           + bl.log_tail(p.log_path))
                    rss_max[i] = max(rss_max[i], bl.status_kib(p.pid)["VmRSS"])
                if time.monotonic() >= next_report:
                    left = t_end - time.monotonic()
                    print(f"  ... {max(0, left):.0f} s to go", flush=True)
                    next_report += 60
            busy1 = bl.machine_busy()
            for i, (tool, iv, p, extra) in enumerate(measured):
                secs, cpu, how = meters[i].read()
                st = bl.status_kib(p.pid)
                roll = bl.smaps_rollup_kib(p.pid)
                delivered = produced(tool, extra, server_url, sink, started_ms) - base[i]
                unit = {"xluo-agent": "points of node_load1 stored",
                        "collectd": "UDP packets", "node_exporter": "scrapes"}[tool]
                rows.append({"tool": tool, "interval": iv, "window_s": secs, "cpu_s": cpu,
                             "cpu_source": how, "cpu_pct": 100.0 * cpu / secs,
                             "rss_kib": st["VmRSS"], "hwm_kib": st["VmHWM"],
                             "rss_max_kib": rss_max[i],
                             "rss_anon_kib": st.get("RssAnon", 0),
                             "rss_file_kib": st.get("RssFile", 0),
                             "pss_kib": roll.get("Pss", 0),
                             "private_kib": roll.get("Private_Clean", 0)
                             + roll.get("Private_Dirty", 0),
                             "threads": len(os.listdir(f"/proc/{p.pid}/task")),
                             "delivered": f"{delivered} {unit}"})
                if tool == "xluo-agent":
                    rows[-1]["series"] = xluo_series(server_url, extra["host"])
                if tool == "node_exporter":
                    rows[-1]["samples_per_scrape"] = extra["scraper"].samples
                if iv == args.intervals[0]:
                    breakdowns.append((tool, iv, bl.smaps_by_object(p.pid)))
            machine_pct = 100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
            for tool, iv, p, extra in measured:
                if "scraper" in extra:
                    extra["scraper"].close()
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        sink.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_results(rows, rows[0]["window_s"] if rows else 0)
    print(f"whole machine busy during the window: {machine_pct:.1f} % of all cores "
          f"(everything, not only the measured processes)")
    for tool, iv, objs in breakdowns:
        print_breakdown(tool, iv, objs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "machine_busy_pct": machine_pct,
                       "breakdown": [{"tool": t, "interval": i, "objects": o}
                                     for t, i, o in breakdowns]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
