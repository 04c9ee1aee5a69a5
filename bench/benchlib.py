"""Helpers shared by the bench drivers (Python standard library only).

Process accounting from /proc, free ports, HTTP, and a process registry
that stops everything a driver started, also on Ctrl-C or SIGTERM.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
AGENT_TOKEN = "bench-agent-token"
API_TOKEN = "bench-api-token"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid):
    """The kB fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, ...)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if len(v) == 2 and v[1] == "kB":
                out[k] = int(v[0])
    return out


def smaps_rollup_kib(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def smaps_by_object(pid):
    """RSS/PSS/private per mapped object (a file, [heap], [stack], or
    [anon]), from /proc/<pid>/smaps, sorted by RSS. Values in kB."""
    objs = {}
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else ""
                name = name or "[anon]"
                cur = objs.setdefault(name, {"Rss": 0, "Pss": 0, "Private_Clean": 0,
                                             "Private_Dirty": 0, "Shared_Clean": 0,
                                             "Shared_Dirty": 0})
                continue
            key = first.rstrip(":")
            if cur is not None and key in cur:
                cur[key] += int(line.split()[1])
    rows = [dict(name=k, **v) for k, v in objs.items() if v["Rss"]]
    rows.sort(key=lambda r: -r["Rss"])
    return rows


def http(method, url, body=None, token=None, timeout=10):
    """Return (status, bytes)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(cond, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # not ready yet
            last = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last!r})" if last else ""))


def binary(build, name):
    path = os.path.join(build, name)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{path} is missing: run `make build` first")
    return path


class Procs:
    """Starts processes in their own session and stops all of them (SIGTERM,
    then SIGKILL) on close; a context manager. SIGINT (also where the shell
    started the driver with SIGINT ignored), SIGTERM and SIGHUP to the
    driver become KeyboardInterrupt so that cleanup always runs."""

    def __init__(self):
        self.procs = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._raise)

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def start(self, argv, log_path, **kw):
        logf = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=kw.pop("stdout", logf), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        p.log_path = log_path
        p._logf = logf
        self.procs.append(p)
        return p

    def stop(self, p, timeout=30):
        """Stop one process; returns the seconds it took to exit."""
        t0 = time.monotonic()
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p._logf.close()
        if p in self.procs:
            self.procs.remove(p)
        return time.monotonic() - t0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in list(self.procs):
            try:
                self.stop(p, timeout=10)
            except Exception:
                pass
        return False


def log_tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def start_server(procs, build, prefix, extra="", log_path=None):
    """Start xluo-server in prefix (conf/server.yaml written here: a random
    loopback port, the bench tokens, log_level warn, then `extra` YAML) and
    wait for /healthz. Returns (process, base URL)."""
    os.makedirs(os.path.join(prefix, "conf"))
    port = free_port()
    with open(os.path.join(prefix, "conf", "server.yaml"), "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\nagent_token: {AGENT_TOKEN}\n"
                f"api_token: {API_TOKEN}\nlog_level: warn\n{extra}")
    url = f"http://127.0.0.1:{port}"
    srv = procs.start([binary(build, "xluo-server"), "-p", prefix, "run"],
                      log_path or os.path.join(prefix, "server.out"))

    def healthy():
        if srv.poll() is not None:
            raise RuntimeError(f"xluo-server exited {srv.returncode}:\n"
                               + log_tail(srv.log_path))
        return http("GET", url + "/healthz", timeout=2)[0] == 200

    wait_for(healthy, 30, f"xluo-server on port {port}")
    return srv, url


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def revision():
    """The commit the binaries were presumably built from (read-only git)."""
    try:
        r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine():
    """One line about the machine: CPU model, cores, memory, OS, kernel."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1048576
    osname = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB, {osname}, "
            f"kernel {os.uname().release}")


def cpu_seconds_fine(pid):
    """CPU seconds of the live threads of pid from se.sum_exec_runtime in
    /proc/<pid>/task/*/sched (nanosecond accounting, shown in ms), or None
    where the kernel does not show it. Threads that have exited are not
    counted: callers compare with cpu_seconds() and fall back to it."""
    total = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/sched") as f:
                for line in f:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":")[1])
                        break
                else:
                    return None
    except OSError:
        return None
    return total / 1000.0


class CpuMeter:
    """CPU used by one process over a window: fine-grained when the thread
    accounting is available and agrees with the tick count, else ticks."""

    def __init__(self, pid):
        self.pid = pid
        self.t0 = time.monotonic()
        self.ticks0 = cpu_seconds(pid)
        self.fine0 = cpu_seconds_fine(pid)

    def read(self):
        secs = time.monotonic() - self.t0
        ticks = cpu_seconds(self.pid) - self.ticks0
        fine1 = cpu_seconds_fine(self.pid)
        if self.fine0 is not None and fine1 is not None:
            fine = fine1 - self.fine0
            if fine >= 0 and abs(fine - ticks) <= 0.02 + 0.01 * ticks:
                return secs, fine, "sched"
        return secs, ticks, "ticks"


def machine_busy():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])
