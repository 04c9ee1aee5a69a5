#!/usr/bin/env python3
"""Log collection benchmark (issue 3): xluo-agent's tail input against
rsyslog, reading a generated file of ~200-byte lines from a warm page cache.

    python3 bench/logs.py --build build [--size 1GiB] [--only a,b,c,d,e,f,g,h]

Scenarios (each from the head of the same file, in a fresh prefix):
  a  xluo-agent tail -> bench_sink (HTTP, counts the lines of each batch)
  b  the same with `include: [ERROR]` (keeps 10 % of the lines)
  c  xluo-agent tail -> a real xluo-server: stored and searchable (the
     server's histogram API counts every line)
  d  rsyslogd imfile -> omfwd TCP -> bench_sink --tcp (counts newlines)
  e  the same with `if $msg contains 'ERROR'` (keeps 10 %)
  f  backlog drain: the agent reads the whole file into its outbox while
     the sink is down (an outage), then the sink starts; the clock runs
     from the sink's start to the last line counted
  g  as a, with the outbox in memory (outbox.enabled: false)
  h  as a, with outbox.sync: none

The file (generated once per run into a temporary directory, or kept and
reused with --file) has lines of 170-230 bytes (~203 on average with the
newline); the keyword ERROR is in exactly every tenth line and nowhere else.
The agent runs with its defaults: batch_max_size 1MiB, zstd compression,
the outbox on disk with sync: always (--batch-max-size, --compression,
--outbox-max), rsyslog with its defaults; both configs are in the functions
agent_config() and rsyslog_config() below.
Before each scenario the file is read once so that it is in the page cache
(fincore shows it). The clock runs from the start of the tailing process to
the arrival of the last line at the sink (c: until the server's histogram
counts every line). MiB/s and lines/s are of the input file. CPU is
utime+stime of the tailing process (all threads) from its start until
then; peak RSS is its VmHWM. Everything started is stopped and the
temporary directory removed at the end, also on Ctrl-C or SIGTERM.

Python standard library only. Figures and how to read them:
docs/performance.md, "Log collection".
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
KEYWORD = "ERROR"

SCENARIOS = {
    "a": "xluo-agent tail -> counting HTTP sink",
    "b": "xluo-agent tail, include [ERROR] -> sink",
    "c": "xluo-agent tail -> xluo-server, searchable",
    "d": "rsyslogd imfile -> omfwd TCP -> sink",
    "e": "rsyslogd imfile, contains 'ERROR' -> TCP",
    "f": "xluo-agent outbox backlog -> sink, drain",
    "g": "xluo-agent tail -> sink, outbox in memory",
    "h": "xluo-agent tail -> sink, outbox sync none",
}

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu cache queue socket upstream backend session token retry timeout").split()


def parse_size(s):
    s = s.strip()
    for suffix, mult in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024), ("G", GiB), ("M", MiB)):
        if s.endswith(suffix):
            return int(float(s[:-len(suffix)]) * mult)
    return int(s)


def generate(path, size):
    """Write lines until the file holds at least `size` bytes; returns
    (lines, keyword lines, bytes). Deterministic (fixed seed)."""
    rnd = random.Random(20261121)
    rb = rnd.getrandbits
    nw = len(WORDS)
    out = []
    written = n = kw = 0
    with open(path, "wb", buffering=MiB) as f:
        while written < size:
            x = rb(64)
            e = n % 10 == 3
            s = (f"2026-11-21T{8 + n // 3600000 % 16:02d}:{n // 60000 % 60:02d}:"
                 f"{n // 1000 % 60:02d}.{n % 1000:03d}Z {'ERROR' if e else 'INFO '} "
                 f"[worker-{x & 63}] request {n} {'failed' if e else 'done'} in {x % 997}ms "
                 f"user=u{x % 100000} path=/api/v1/items/{x % 1000003}/{WORDS[x >> 20 & 31]}/"
                 f"{WORDS[x >> 25 & 31]} status={200 + x % 300} bytes={x >> 30 & 65535} "
                 f"trace={x:016x} msg=")
            target = 170 + (x >> 46) % 61
            i = x >> 8
            while len(s) < target:
                s += WORDS[i % nw] + " "
                i //= nw
                if i == 0:
                    i = rb(48)
            s = s[:-1]
            out.append(s)
            written += len(s) + 1
            n += 1
            kw += e
            if len(out) == 8192:
                f.write(("\n".join(out) + "\n").encode())
                out = []
        if out:
            f.write(("\n".join(out) + "\n").encode())
    return n, kw, written


def prepare_file(path, size):
    """The input file and its facts, generated unless a matching one with
    its .json description is already there."""
    meta_path = path + ".json"
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if meta["target"] == size and os.path.getsize(path) == meta["bytes"]:
            print(f"reusing {path} ({meta['bytes'] / MiB:.0f} MiB, {meta['lines']:,} lines)")
            return meta
    except (OSError, ValueError, KeyError):
        pass
    print(f"generating {size / MiB:.0f} MiB of log lines in {path} ...", flush=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t0 = time.monotonic()
    lines, kw, nbytes = generate(path, size)
    meta = dict(target=size, lines=lines, keyword_lines=kw, bytes=nbytes)
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    print(f"  {lines:,} lines ({nbytes / lines:.1f} bytes each with the newline), "
          f"{kw:,} with {KEYWORD}, in {time.monotonic() - t0:.0f} s", flush=True)
    return meta


def warm(path):
    """Read the file once so that it is in the page cache; returns the share
    of its pages cached afterwards (from fincore, None if unavailable)."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 * MiB)
        while f.readinto(buf):
            pass
    try:
        r = subprocess.run(["fincore", "-b", "-n", "-o", "RES,SIZE", path],
                           capture_output=True, text=True, timeout=30)
        res, size = (int(v) for v in r.stdout.split())
        return res / max(1, size)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


class Procs(bl.Procs):
    """bl.Procs that stops the newest process first (an agent before its
    server, so that it does not spend its drain time on a dead server)."""

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            try:
                self.stop(p, timeout=10)
            except Exception:
                pass
        return False


def wait_progress(get_count, target, procs_alive, what, stall_s):
    """Poll get_count() until it reaches target; fail when a watched process
    dies or the count does not move for stall_s seconds."""
    last, last_change = -1, time.monotonic()
    while True:
        for p, name in procs_alive:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited {p.returncode} while waiting for {what}:\n"
                                   + bl.log_tail(p.log_path))
        n = get_count()
        if n >= target:
            return n
        now = time.monotonic()
        if n != last:
            last, last_change = n, now
        elif now - last_change > stall_s:
            raise RuntimeError(f"no progress for {stall_s:.0f} s waiting for {what}: "
                               f"{n:,} of {target:,}")
        time.sleep(0.05)


def start_sink(args, procs, d, tcp=False, port=None):
    port = port or bl.free_port()
    argv = [bl.binary(args.build, "bench_sink"), "--http", str(port)]
    tcp_port = None
    if tcp:
        tcp_port = bl.free_port()
        argv += ["--tcp", str(tcp_port)]
    p = procs.start(argv, os.path.join(d, "sink.out"))
    url = f"http://127.0.0.1:{port}"

    def count():
        st, body = bl.http("GET", url + "/count", timeout=5)
        if st != 200:
            raise RuntimeError(f"sink /count: {st}")
        return json.loads(body)

    bl.wait_for(lambda: p.poll() is None and count(), 10, "bench_sink to listen")
    return p, url, tcp_port, count


def agent_config(args, server_url, include, key):
    inc = f"      include: [{include}]\n" if include else ""
    outbox = {"g": "{enabled: false, max_size: 8MiB}",
              "h": f"{{sync: none, max_size: {args.outbox_max}}}"}.get(
                  key, f"{{max_size: {args.outbox_max}}}")
    return (f"servers: [{server_url}]\n"
            f"token: {bl.AGENT_TOKEN}\n"
            f"log_level: warn\n"
            f"batch_max_size: {args.batch_max_size}\n"
            f"compression: {args.compression}\n"
            f"outbox: {outbox}\n"
            f"retry_max_backoff: 1s\n"
            f"breaker_cooldown: 1s\n"
            f"inputs:\n"
            f"  system: {{enabled: false}}\n"
            f"  tail:\n"
            f"    - name: bench\n"
            f"      paths: [{args.file}]\n"
            f"      from: head\n" + inc)


def start_agent(args, procs, d, server_url, include, key):
    prefix = os.path.join(d, "agent")
    os.makedirs(os.path.join(prefix, "conf"))
    with open(os.path.join(prefix, "conf", "agent.yaml"), "w") as f:
        f.write(agent_config(args, server_url, include, key))
    t0 = time.monotonic()
    p = procs.start([bl.binary(args.build, "xluo-agent"), "-p", prefix, "run"],
                    os.path.join(d, "agent.out"))
    return p, t0


def start_perf(args, procs, d, pid, key):
    """perf record the process pid when key ("a", or "c:server" for the
    server of scenario c) is in --perf."""
    if key not in args.perf:
        return None
    os.makedirs(args.perf_dir, exist_ok=True)
    out = os.path.join(args.perf_dir, f"perf-{key.replace(':', '-')}.data")
    p = procs.start(["perf", "record", "--call-graph", args.perf_call_graph, "-F",
                     str(args.perf_freq), "-o", out, "-p", str(pid)],
                    os.path.join(d, f"perf-{key.replace(':', '-')}.out"))
    time.sleep(0.3)  # perf attaches; the agent is still registering
    return p


def stop_perf(procs, p):
    if p is None:
        return
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            pass
    procs.stop(p)
    if p.returncode not in (0, -2, 130):
        print(f"   perf record exited {p.returncode}:\n" + bl.log_tail(p.log_path, 5))


def finish_tailer(row, pid, t0, t_end, nbytes, lines_in, machine0):
    """Fill the row with the tailing process's figures at t_end."""
    secs = max(1e-9, t_end - t0)
    cpu = bl.cpu_seconds(pid)
    st = bl.status_kib(pid)
    busy1 = bl.machine_busy()
    row.update(seconds=secs, mib_s=nbytes / MiB / secs, lines_s=lines_in / secs,
               cpu_s=cpu, cpu_s_per_gib=cpu / (nbytes / GiB), cpu_pct=100 * cpu / secs,
               peak_rss_mib=st.get("VmHWM", 0) / 1024, rss_end_mib=st.get("VmRSS", 0) / 1024,
               busy_s=(busy1[0] - machine0[0]) / bl.CLK_TCK)


def set_other(row, *helpers_cpu_s):
    """Machine CPU besides the tailer and the given helpers (sink, server)
    over the run, in % of one core: other work on a shared machine."""
    other = row.pop("busy_s") - row["cpu_s"] - sum(helpers_cpu_s)
    row["other_pct"] = max(0.0, 100 * other / row["seconds"])


def run_agent_sink(args, procs, tmp, meta, key):
    d = tempfile.mkdtemp(prefix=f"{key}-", dir=tmp)
    include = KEYWORD if key == "b" else None
    expect = meta["keyword_lines"] if include else meta["lines"]
    sink, url, _, count = start_sink(args, procs, d)
    m0 = bl.machine_busy()
    agent, t0 = start_agent(args, procs, d, url, include, key)
    perf = start_perf(args, procs, d, agent.pid, key)
    wait_progress(lambda: count()["lines"], expect, [(agent, "xluo-agent"), (sink, "bench_sink")],
                  "the sink to count every line", args.stall)
    c = count()
    t_end = c["last_ns"] / 1e9
    row = dict(scenario=key, what=SCENARIOS[key], shipped=c["lines"], expected=expect,
               batches=c["batches"], body_mib=c["body_bytes"] / MiB,
               first_batch_s=c["first_ns"] / 1e9 - t0)
    finish_tailer(row, agent.pid, t0, t_end, meta["bytes"], meta["lines"], m0)
    row["sink_cpu_s"] = bl.cpu_seconds(sink.pid)
    set_other(row, row["sink_cpu_s"])
    stop_perf(procs, perf)
    procs.stop(agent)
    procs.stop(sink)
    return row


def tail_offset(prefix):
    """The committed offset of the one followed file (data/tail-offsets)."""
    try:
        with open(os.path.join(prefix, "data", "tail-offsets")) as f:
            for line in f:
                w = line.split()
                if w and w[0] == "file":
                    return int(w[6])
    except FileNotFoundError:
        pass
    return 0


def run_drain(args, procs, tmp, meta, key):
    """f: fill the outbox during an outage, then time the drain."""
    d = tempfile.mkdtemp(prefix=f"{key}-", dir=tmp)
    port = bl.free_port()
    url = f"http://127.0.0.1:{port}"
    agent, t_fill = start_agent(args, procs, d, url, None, key)
    prefix = os.path.join(d, "agent")
    wait_progress(lambda: tail_offset(prefix), meta["bytes"], [(agent, "xluo-agent")],
                  "the outbox to hold the whole file", args.stall)
    fill_s = time.monotonic() - t_fill
    backlog = bl.dir_bytes(os.path.join(prefix, "data", "outbox"))
    cpu0 = bl.cpu_seconds(agent.pid)
    m0 = bl.machine_busy()
    sink, _, _, count = start_sink(args, procs, d, port=port)
    t0 = time.monotonic()
    wait_progress(lambda: count()["lines"], meta["lines"],
                  [(agent, "xluo-agent"), (sink, "bench_sink")],
                  "the sink to count every line", args.stall)
    c = count()
    t_end = c["last_ns"] / 1e9
    row = dict(scenario=key, what=SCENARIOS[key], shipped=c["lines"], expected=meta["lines"],
               batches=c["batches"], body_mib=c["body_bytes"] / MiB, first_batch_s=0,
               fill_s=fill_s, backlog_mib=backlog / MiB)
    finish_tailer(row, agent.pid, t0, t_end, meta["bytes"], meta["lines"], m0)
    row["cpu_s"] = bl.cpu_seconds(agent.pid) - cpu0
    row["cpu_s_per_gib"] = row["cpu_s"] / (meta["bytes"] / GiB)
    row["sink_cpu_s"] = bl.cpu_seconds(sink.pid)
    set_other(row, row["sink_cpu_s"])
    print(f"   outbox filled in {fill_s:.1f} s: {backlog / MiB:.0f} MiB on disk for "
          f"{meta['bytes'] / MiB:.0f} MiB of log; drained in {row['seconds']:.1f} s", flush=True)
    procs.stop(agent)
    procs.stop(sink)
    return row


def run_agent_server(args, procs, tmp, meta, key):
    d = tempfile.mkdtemp(prefix=f"{key}-", dir=tmp)
    prefix = os.path.join(d, "server")
    srv, url = bl.start_server(procs, args.build, prefix, log_path=os.path.join(d, "server.out"))

    # The range is whole minutes (from 1 h before the start to 1 h after
    # it, 2 h buckets) so that the store answers from its per-minute counts
    # and does not scan the rows of the current minute at every poll.
    minute = 60000
    t_ms = int(time.time() * 1000)
    t_from = (t_ms - 3600000) // minute * minute
    t_to = (t_ms + 3600000) // minute * minute - 1

    def stored(q=None):
        params = {"from": t_from, "to": t_to, "step": "2h"}
        if q:
            params["q"] = q
        st, body = bl.http("GET", url + "/api/v1/logs/histogram?" + urllib.parse.urlencode(params),
                           token=bl.API_TOKEN, timeout=120)
        if st != 200:
            raise RuntimeError(f"histogram: {st} {body[:200]!r}")
        return sum(b[1] for b in json.loads(body)["buckets"])

    srv_cpu0 = bl.cpu_seconds(srv.pid)
    m0 = bl.machine_busy()
    agent, t0 = start_agent(args, procs, d, url, None, key)
    perf = start_perf(args, procs, d, agent.pid, key)
    perf_srv = start_perf(args, procs, d, srv.pid, key + ":server")
    polls = [0]

    def counted():
        polls[0] += 1
        time.sleep(0.2)  # with the 50 ms of wait_progress: ~4 polls a second
        return stored()

    n = wait_progress(counted, meta["lines"], [(agent, "xluo-agent"), (srv, "xluo-server")],
                      "the server to count every line", args.stall)
    t_end = time.monotonic()
    row = dict(scenario=key, what=SCENARIOS[key], shipped=n, expected=meta["lines"])
    finish_tailer(row, agent.pid, t0, t_end, meta["bytes"], meta["lines"], m0)
    srv_cpu = bl.cpu_seconds(srv.pid) - srv_cpu0
    sst = bl.status_kib(srv.pid)
    row.update(server_cpu_s=srv_cpu, server_cpu_s_per_gib=srv_cpu / (meta["bytes"] / GiB),
               server_cpu_pct=100 * srv_cpu / row["seconds"],
               server_peak_rss_mib=sst.get("VmHWM", 0) / 1024, count_polls=polls[0])
    set_other(row, srv_cpu)
    stop_perf(procs, perf)
    stop_perf(procs, perf_srv)
    procs.stop(agent)
    # Searchable: a full-text count of the keyword, and one page of results.
    t = time.monotonic()
    row["keyword_count"] = stored(KEYWORD)
    row["keyword_count_s"] = time.monotonic() - t
    st, body = bl.http("GET", url + "/api/v1/logs?" + urllib.parse.urlencode(
        {"from": t_from, "to": t_to, "q": KEYWORD, "limit": 10}), token=bl.API_TOKEN,
        timeout=120)
    row["search_ok"] = st == 200 and len(json.loads(body).get("logs", [])) == 10
    row["server_stop_s"] = procs.stop(srv, timeout=300)
    row["data_mib"] = bl.dir_bytes(os.path.join(prefix, "data")) / MiB
    shutil.rmtree(os.path.join(prefix, "data"), ignore_errors=True)  # ~2x the input
    return row


def rsyslog_config(file, work, port, keyword):
    action = f'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp")'
    rule = f"if $msg contains '{keyword}' then {{ {action} }}" if keyword else action
    return (f'global(workDirectory="{work}" maxMessageSize="64k")\n'
            f'module(load="imfile" mode="inotify")\n'
            f'input(type="imfile" file="{file}" tag="bench" ruleset="bench")\n'
            f'ruleset(name="bench") {{\n  {rule}\n}}\n')


def run_rsyslog(args, procs, tmp, meta, key):
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not os.access(rsyslogd, os.X_OK):
        raise RuntimeError("rsyslogd not found: run scripts/install-deps.sh --bench")
    d = tempfile.mkdtemp(prefix=f"{key}-", dir=tmp)
    work = os.path.join(d, "work")
    os.makedirs(work)
    keyword = KEYWORD if key == "e" else None
    expect = meta["keyword_lines"] if keyword else meta["lines"]
    sink, url, tcp_port, count = start_sink(args, procs, d, tcp=True)
    conf = os.path.join(d, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(rsyslog_config(args.file, work, tcp_port, keyword))
    m0 = bl.machine_busy()
    t0 = time.monotonic()
    rs = procs.start([rsyslogd, "-n", "-f", conf, "-i", os.path.join(d, "rsyslogd.pid")],
                     os.path.join(d, "rsyslogd.out"))
    perf = start_perf(args, procs, d, rs.pid, key)
    wait_progress(lambda: count()["tcp_lines"], expect, [(rs, "rsyslogd"), (sink, "bench_sink")],
                  "the sink to count every line", args.stall)
    c = count()
    row = dict(scenario=key, what=SCENARIOS[key], shipped=c["tcp_lines"], expected=expect,
               body_mib=c["tcp_bytes"] / MiB, first_batch_s=c["tcp_first_ns"] / 1e9 - t0)
    finish_tailer(row, rs.pid, t0, c["tcp_last_ns"] / 1e9, meta["bytes"], meta["lines"], m0)
    row["sink_cpu_s"] = bl.cpu_seconds(sink.pid)
    set_other(row, row["sink_cpu_s"])
    stop_perf(procs, perf)
    procs.stop(rs)
    procs.stop(sink)
    return row


def rsyslog_version():
    try:
        r = subprocess.run(["rsyslogd", "-v"], capture_output=True, text=True, timeout=10)
        return r.stdout.split("\n")[0].replace("compiled with:", "").strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def print_table(rows, args, meta):
    print(f"\nLog collection ({bl.machine()}, xluo {bl.revision()}, {rsyslog_version()})")
    print(f"input: {meta['bytes'] / MiB:.0f} MiB, {meta['lines']:,} lines, "
          f"{meta['keyword_lines']:,} with {KEYWORD}; page cache warm; agent "
          f"batch_max_size {args.batch_max_size}, compression {args.compression}, "
          f"outbox.max_size {args.outbox_max}")
    hdr = ["", "scenario", "MiB/s", "lines/s", "shipped", "CPU s/GiB", "CPU %", "peak RSS",
           "server CPU s/GiB", "server RSS", "other"]
    out = [hdr]
    for r in rows:
        srv = "server_cpu_s_per_gib" in r
        out.append([r["scenario"], r["what"], f"{r['mib_s']:.1f}", f"{r['lines_s']:,.0f}",
                    f"{r['shipped']:,}", f"{r['cpu_s_per_gib']:.2f}", f"{r['cpu_pct']:.0f}",
                    f"{r['peak_rss_mib']:.1f} MiB",
                    f"{r['server_cpu_s_per_gib']:.2f}" if srv else "-",
                    f"{r['server_peak_rss_mib']:.0f} MiB" if srv else "-",
                    f"{r['other_pct']:.0f} %"])
    widths = [max(len(row[i]) for row in out) for i in range(len(hdr))]
    for i, row in enumerate(out):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("MiB/s, lines/s: of the input file, from the start of the tailing process to the "
          "last line at the sink (c: counted by the server's histogram API); CPU: of the "
          "tailing process (xluo-agent or rsyslogd), % of one core; other: CPU used on the "
          "machine meanwhile by anything but the tailer, the sink and the server, % of one "
          "core (should be ~0).")
    for r in rows:
        extra = []
        if "sink_cpu_s" in r:
            extra.append(f"sink CPU {r['sink_cpu_s']:.1f} s")
        if "batches" in r:
            extra.append(f"{r['batches']:,} batches, {r['body_mib']:.0f} MiB of JSON")
        if r.get("first_batch_s") is not None:
            extra.append(f"first arrival after {r['first_batch_s']:.2f} s")
        if "server_cpu_s" in r:
            extra.append(f"server CPU {r['server_cpu_s']:.1f} s ({r['server_cpu_pct']:.0f} %), "
                         f"{r['data_mib']:.0f} MiB on disk, keyword count "
                         f"{r['keyword_count']:,} in {r['keyword_count_s']:.2f} s, search "
                         f"{'ok' if r['search_ok'] else 'FAILED'}")
        print(f"  {r['scenario']}: {r['seconds']:.1f} s; " + "; ".join(extra))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(bl.ROOT, "build"))
    ap.add_argument("--size", default="1GiB", help="input file size (1GiB, 256MiB, ...)")
    ap.add_argument("--only", default="a,b,c,d,e,f,g,h",
                    help="comma-separated scenarios: a,b,c,d,e,f,g,h")
    ap.add_argument("--file", help="use (and keep) this input file; generated if missing "
                                   "or of another size (a .json beside it describes it)")
    ap.add_argument("--batch-max-size", default="1MiB", help="agent batch_max_size")
    ap.add_argument("--compression", default="zstd", help="agent compression (zstd, none)")
    ap.add_argument("--outbox-max", default="4GiB",
                    help="agent outbox.max_size (f needs room for the whole file)")
    ap.add_argument("--repeat", type=int, default=1, help="run each scenario this often")
    ap.add_argument("--stall", type=float, default=120,
                    help="fail when nothing arrives for this many seconds")
    ap.add_argument("--perf", default="", help="scenarios whose tailing process to record "
                                               "with perf record (a,b,...; c:server for the "
                                               "server of c)")
    ap.add_argument("--perf-dir", default=".", help="where perf-<scenario>.data goes")
    ap.add_argument("--perf-freq", type=int, default=999)
    ap.add_argument("--perf-call-graph", default="dwarf",
                    help="perf --call-graph mode (dwarf: the build has no frame pointers)")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    bad = [k for k in keys if k not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s) {','.join(bad)}: choose from {','.join(SCENARIOS)}")
    args.perf = [k.strip() for k in args.perf.split(",") if k.strip()]
    size = parse_size(args.size)
    tmp = tempfile.mkdtemp(prefix="xluo-bench-logs-")
    rows = []
    failed = False
    try:
        with Procs() as procs:
            if not args.file:
                args.file = os.path.join(tmp, "input", "bench.log")
            args.file = os.path.abspath(args.file)
            meta = prepare_file(args.file, size)
            for key in [k for k in keys for _ in range(args.repeat)]:
                cached = warm(args.file)
                print(f"\n== {key}: {SCENARIOS[key]} (file "
                      f"{'?' if cached is None else f'{100 * cached:.0f} %'} in the page cache)",
                      flush=True)
                runner = {"a": run_agent_sink, "b": run_agent_sink, "c": run_agent_server,
                          "d": run_rsyslog, "e": run_rsyslog, "f": run_drain,
                          "g": run_agent_sink, "h": run_agent_sink}[key]
                try:
                    row = runner(args, procs, tmp, meta, key)
                except RuntimeError as e:
                    print(f"   {key} FAILED: {e}", flush=True)
                    failed = True
                    continue
                rows.append(row)
                print(f"   {row['mib_s']:.1f} MiB/s, {row['lines_s']:,.0f} lines/s, "
                      f"{row['shipped']:,} shipped, CPU {row['cpu_s_per_gib']:.2f} s/GiB, "
                      f"peak RSS {row['peak_rss_mib']:.1f} MiB", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if rows:
        print_table(rows, args, meta)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta, machine=bl.machine(), rows=rows,
                           batch_max_size=args.batch_max_size, compression=args.compression,
                           outbox_max=args.outbox_max),
                      f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
