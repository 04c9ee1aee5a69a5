#!/usr/bin/env python3
"""Exec input and push API benchmark (issue 5).

    python3 bench/exec.py --build build [--scripts 200] [--interval 10s]
                          [--seconds 60] [--push-seconds 10]

1. Scripts: one xluo-agent runs --scripts small scripts (each prints one
   seed-003 JSON event) every --interval, shipping to a real xluo-server.
   After a warm-up of one interval, over --seconds: the agent's own CPU
   (% of one core), its RSS, the CPU of the scripts it ran (reaped
   children), runs finished and events stored.
2. Push: clients POST JSON lines of events to the agent's /v1/push as fast
   as they can for --push-seconds; events/s accepted by the agent, and
   events/s stored by the server (from the first POST until the last event
   is queryable).
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

SCRIPT = "#!/bin/sh\necho '{\"type\": \"bench\", \"script\": \"%d\", \"value\": 1}'\n"


def parse_duration(s):
    m = re.fullmatch(r"(\d+)(ms|s|m)", s)
    if not m:
        raise SystemExit(f"bad duration {s!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def children_cpu(pid):
    """cutime + cstime: CPU of the children pid has reaped (the scripts)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / bl.CLK_TCK


def local_metric(url, name):
    st, raw = bl.http("GET", url + "/metrics")
    if st != 200:
        return None
    m = re.search(rf"(?m)^{name} (\S+)$", raw.decode(errors="replace"))
    return float(m.group(1)) if m else None


def count_events(url, typ):
    """Events of a type stored on the server (pages with `before`)."""
    total, before = 0, None
    while True:
        q = {"type": typ, "since": "1h", "limit": 10000}
        if before:
            q["before"] = before
        st, body = bl.http("GET", url + "/api/v1/events?" + urllib.parse.urlencode(q),
                           token=bl.API_TOKEN, timeout=60)
        if st != 200:
            raise RuntimeError(f"events query: {st} {body[:300]}")
        body = json.loads(body)
        total += len(body["events"])
        before = body.get("next_before")
        if not before:
            return total


def start_agent(procs, build, prefix, server_url, inputs):
    port = bl.free_port()
    os.makedirs(os.path.join(prefix, "conf"), exist_ok=True)
    with open(os.path.join(prefix, "conf", "agent.yaml"), "w") as f:
        f.write(f"servers: [{server_url}]\ntoken: {bl.AGENT_TOKEN}\nlog_level: warn\n"
                f"listen: 127.0.0.1:{port}\ninputs:\n  system: {{enabled: false}}\n{inputs}")
    p = procs.start([bl.binary(build, "xluo-agent"), "-p", prefix, "run"],
                    os.path.join(prefix, "agent.out"))
    url = f"http://127.0.0.1:{port}"
    bl.wait_for(lambda: bl.http("GET", url + "/healthz", timeout=2)[0] == 200, 30,
                "agent /healthz")
    return p, url


def bench_scripts(procs, args, tmp, server_url):
    d = os.path.join(tmp, "agent-scripts")
    cron = os.path.join(d, "cron.d")
    os.makedirs(cron)
    for i in range(args.scripts):
        path = os.path.join(cron, f"s{i:04d}.sh")
        with open(path, "w") as f:
            f.write(SCRIPT % i)
        os.chmod(path, 0o755)
    agent, url = start_agent(procs, args.build, d, server_url,
                             f"  exec:\n    - dir: {cron}\n      interval: {args.interval}\n"
                             f"      concurrency: {args.concurrency}\n")
    interval = parse_duration(args.interval)
    time.sleep(interval + 1)
    meter = bl.CpuMeter(agent.pid)
    child0 = children_cpu(agent.pid)
    runs0 = local_metric(url, "xluo_agent_exec_runs_total") or 0
    rss_max = 0
    t_end = time.monotonic() + args.seconds
    while time.monotonic() < t_end:
        rss_max = max(rss_max, bl.status_kib(agent.pid).get("VmRSS", 0))
        time.sleep(0.5)
    secs, cpu, how = meter.read()
    child = children_cpu(agent.pid) - child0
    runs = (local_metric(url, "xluo_agent_exec_runs_total") or 0) - runs0
    skipped = local_metric(url, "xluo_agent_exec_skipped_total") or 0
    expected = args.scripts * args.seconds / interval
    print(f"scripts: {args.scripts} every {args.interval}, measured {secs:.0f} s")
    print(f"  runs finished     {runs:.0f} (expected ~{expected:.0f}), skipped {skipped:.0f}")
    print(f"  agent CPU         {100 * cpu / secs:.3f} % of one core ({how}); "
          f"{1000 * cpu / max(runs, 1):.3f} ms per run")
    print(f"  scripts' CPU      {100 * child / secs:.3f} % of one core (sh + echo, reaped)")
    print(f"  agent RSS         {rss_max / 1024:.2f} MiB (max)")
    stored = count_events(server_url, "bench")
    print(f"  events stored     {stored}")
    procs.stop(agent)


def bench_push(procs, args, tmp, server_url):
    d = os.path.join(tmp, "agent-push")
    agent, url = start_agent(procs, args.build, d, server_url, "")
    per_post = args.per_post
    lines = "\n".join(json.dumps({"type": "pushbench", "n": i, "user": "u%d" % (i % 97),
                                  "amount": i * 0.5}) for i in range(per_post)).encode()
    sent = [0] * args.clients
    errors = []
    stop = threading.Event()

    def client(k):
        while not stop.is_set():
            st, body = bl.http("POST", url + "/v1/push", lines)
            if st != 200:
                errors.append((st, body[:300]))
                return
            sent[k] += json.loads(body)["accepted"]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    meter = bl.CpuMeter(agent.pid)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.push_seconds)
    stop.set()
    for t in threads:
        t.join()
    t_push = time.monotonic() - t0
    total = sum(sent)
    if errors:
        raise SystemExit(f"push failed: {errors[0]}")
    secs, cpu, how = meter.read()
    print(f"push: {args.clients} clients, {per_post} events per POST, {t_push:.1f} s")
    print(f"  accepted by agent {total / t_push:,.0f} events/s "
          f"(agent CPU {100 * cpu / secs:.0f} % of one core)")
    stored = bl.wait_for(lambda: (lambda n: n if n >= total else None)(
        count_events(server_url, "pushbench")), 600, "every pushed event stored", interval=1)
    t_store = time.monotonic() - t0
    print(f"  stored by server  {stored / t_store:,.0f} events/s "
          f"({stored} events, all stored after {t_store:.1f} s)")
    procs.stop(agent)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--scripts", type=int, default=200)
    ap.add_argument("--interval", default="10s")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--push-seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--per-post", type=int, default=500)
    ap.add_argument("--only", default="scripts,push")
    args = ap.parse_args()
    print(bl.machine())
    tmp = tempfile.mkdtemp(prefix="xluo-bench-exec-")
    try:
        with bl.Procs() as procs:
            _, server_url = bl.start_server(procs, args.build, os.path.join(tmp, "server"))
            if "scripts" in args.only:
                bench_scripts(procs, args, tmp, server_url)
            if "push" in args.only:
                bench_push(procs, args, tmp, server_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
