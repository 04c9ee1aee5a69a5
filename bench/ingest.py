#!/usr/bin/env python3
"""Ingest benchmark: a real xluo-server in a temporary prefix, loaded by
bench_ingest (N simulated agents posting pre-built JSON batches over C
keep-alive connections), once with `store: {sync: always}` and once with
`sync: none`. Prints one table; it measures, it never asserts speed.

    python3 bench/ingest.py --build build [--quick] [--sync always,none]

Server CPU seconds (utime+stime from /proc/<pid>/stat) are taken between
the first request and the last acknowledgement; peak RSS is VmHWM from
/proc/<pid>/status read just before the server is stopped.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


def run_one(args, sync, procs, tmp):
    prefix = os.path.join(tmp, f"server-{sync}")
    srv, url = bl.start_server(procs, args.build, prefix, f"store: {{sync: {sync}}}\n")
    argv = [bl.binary(args.build, "bench_ingest"), "-u", url, "-a", bl.AGENT_TOKEN,
            "-k", bl.API_TOKEN, "-n", str(args.agents), "-c", str(args.conns),
            "-s", str(args.samples), "-b", str(args.batches)]
    if args.max_seconds:
        argv += ["-d", str(args.max_seconds)]
    shown = [os.path.relpath(a, bl.ROOT) if a.startswith(bl.ROOT + "/") else a for a in argv]
    print(f"\n== sync: {sync}: {' '.join(shown)}", flush=True)
    gen = procs.start(argv, os.path.join(tmp, f"bench-{sync}.out"), stdout=subprocess.PIPE)
    marks, result = {}, None
    for raw in gen.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith("MARK "):
            marks[line[5:]] = (time.monotonic(), bl.cpu_seconds(srv.pid), bl.machine_busy())
            continue
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            continue
        print("   " + line, flush=True)
    rc = gen.wait()
    procs.procs.remove(gen)
    gen._logf.close()
    status = bl.status_kib(srv.pid)
    cpu_total = bl.cpu_seconds(srv.pid)
    stop_s = procs.stop(srv, timeout=300)
    if result is None:
        raise RuntimeError(f"bench_ingest exited {rc} without a result; server log:\n"
                           + bl.log_tail(srv.log_path))
    row = dict(result, sync=sync, bench_rc=rc, server_stop_s=stop_s,
               server_peak_rss_mib=status.get("VmHWM", 0) / 1024,
               server_rss_end_mib=status.get("VmRSS", 0) / 1024,
               server_cpu_total_s=cpu_total,
               data_mib=bl.dir_bytes(os.path.join(prefix, "data")) / 1048576)
    if "start" in marks and "acked" in marks:
        row["server_cpu_s"] = marks["acked"][1] - marks["start"][1]
        secs = max(1e-9, marks["acked"][0] - marks["start"][0])
        row["server_cpu_pct"] = 100 * row["server_cpu_s"] / secs
        b0, b1 = marks["start"][2], marks["acked"][2]
        # CPU busy on the machine beyond the server and the generator: other
        # work that competed with the run (should be near 0 on a quiet box).
        busy_s = (b1[0] - b0[0]) / bl.CLK_TCK
        row["other_cpu_pct"] = max(0.0, 100 * (busy_s - row["server_cpu_s"]
                                               - result.get("gen_cpu_s", 0)) / secs)
    if rc != 0:
        print(f"   bench_ingest exited {rc}; server log tail:\n"
              + bl.log_tail(srv.log_path, 10), flush=True)
    return row


def print_table(rows):
    print("\nxluo-server ingest (" + bl.machine() + ", xluo " + bl.revision() + ")")
    hdr = ["sync", "accepted", "samples/s", "MiB/s", "p50 ms", "p99 ms", "queryable",
           "srv CPU s", "CPU s/1M", "CPU %", "gen %", "other %", "peak RSS", "on disk",
           "stop"]
    out = [hdr]
    for r in rows:
        q = r.get("queryable_s", -1)
        acc = max(1, r["accepted"])
        out.append([r["sync"], f"{r['accepted']:,}", f"{r['samples_per_s']:,.0f}",
                    f"{r['mib_per_s']:.1f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                    f"{q:.2f} s" if q is not None and q >= 0 else "NO",
                    f"{r.get('server_cpu_s', 0):.1f}",
                    f"{r.get('server_cpu_s', 0) / acc * 1e6:.2f}",
                    f"{r.get('server_cpu_pct', 0):.0f}",
                    f"{100 * r.get('gen_cpu_s', 0) / max(1e-9, r['elapsed_s']):.0f}",
                    f"{r.get('other_cpu_pct', 0):.0f}",
                    f"{r['server_peak_rss_mib']:.0f} MiB", f"{r['data_mib']:.0f} MiB",
                    f"{r['server_stop_s']:.1f} s"])
    widths = [max(len(row[i]) for row in out) for i in range(len(hdr))]
    for i, row in enumerate(out):
        print("  ".join(c.rjust(w) if j else c.ljust(w)
                        for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("queryable: seconds from the last ack until agg=count over every series equals "
          "the accepted total; CPU s/1M: server CPU seconds per million samples while "
          "ingesting; CPU %: of one core (2 cores = 200 %); gen %: the load generator; other %: "
          "everything else busy on the machine meanwhile (should be ~0); on disk: data/ "
          "after stop.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(bl.ROOT, "build"))
    ap.add_argument("--sync", default="always,none", help="comma-separated: always,none")
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--samples", type=int, default=5000, help="samples per batch")
    ap.add_argument("--batches", type=int, default=None,
                    help="batches per agent (default 40, 8 with --quick)")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="stop sending after this long (0: send every batch)")
    ap.add_argument("--quick", action="store_true", help="a short run (4M samples per setting)")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.batches is None:
        args.batches = 8 if args.quick else 40
    args.build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="xluo-bench-ingest-")
    rows = []
    try:
        with bl.Procs() as procs:
            for sync in args.sync.split(","):
                rows.append(run_one(args, sync.strip(), procs, tmp))
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["bench_rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
