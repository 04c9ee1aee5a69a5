"""End-to-end harness: runs the real xluo binaries on loopback.

Every test gets a temporary prefix (conf/ log/ run/ data/), random free
ports, and waits on conditions with deadlines (wait_for), never bare sleeps.
Binaries come from $XLUO_BIN_DIR (set by CTest), else ./build.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("XLUO_BIN_DIR", os.path.join(ROOT, "build"))
AGENT_TOKEN = "agent-secret-token"
API_TOKEN = "api-secret-token"


def binary(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest(f"{path} not built (run `make build`)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=20.0, what="condition", interval=0.05):
    """Call cond() until it returns a truthy value; fail after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # the condition may fail until ready
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


def http(method, url, body=None, token=None, headers=None, timeout=10):
    """Return (status, parsed JSON or text)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class Daemon:
    """One xluo-server or xluo-agent in its own prefix, run in the foreground."""

    name = None
    conf_name = None

    def __init__(self, prefix, conf_text):
        self.prefix = prefix
        os.makedirs(os.path.join(prefix, "conf"), exist_ok=True)
        self.conf = os.path.join(prefix, "conf", self.conf_name)
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.proc = None
        self.logpath = os.path.join(prefix, f"{self.name}.out")

    def cmd(self, *verb, check=False, timeout=60):
        r = subprocess.run([binary(self.name), "-p", self.prefix, *verb],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name} {verb}: exit {r.returncode}: {r.stderr}")
        return r

    def start_fg(self, verb="run"):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen([binary(self.name), "-p", self.prefix, verb],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        return self

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop within {timeout}s")
        if self.proc:
            self.logf.close()
        code = self.proc.returncode if self.proc else None
        self.proc = None
        if sig == signal.SIGTERM and code not in (None, 0):
            raise AssertionError(f"{self.name} exited {code} on SIGTERM:\n{self.log()[-4000:]}")
        return code

    def sanitizer_report(self):
        """The first ASan/UBSan/LSan report in the output, if any."""
        text = self.log()
        for mark in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    def kill(self):
        return self.stop(signal.SIGKILL)


class Server(Daemon):
    name = "xluo-server"
    conf_name = "server.yaml"

    def __init__(self, prefix, extra=""):
        self.port = free_port()
        super().__init__(prefix, f"listen: 127.0.0.1:{self.port}\n"
                                 f"agent_token: {AGENT_TOKEN}\n"
                                 f"api_token: {API_TOKEN}\n" + extra)
        self.url = f"http://127.0.0.1:{self.port}"

    def start_fg(self, verb="run"):
        super().start_fg(verb)
        wait_for(lambda: self.healthy(), 20, f"server /healthz on {self.port}\n{self.log()}")
        return self

    def healthy(self):
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
        return http("GET", self.url + "/healthz", timeout=2)[0] == 200

    def api(self, path, token=API_TOKEN):
        status, body = http("GET", self.url + path, token=token)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body}")
        return body


class Agent(Daemon):
    name = "xluo-agent"
    conf_name = "agent.yaml"

    def __init__(self, prefix, server_urls, interval="1s", extra="", inputs=""):
        """inputs: YAML lines placed under `inputs:` (indented by two)."""
        servers = ", ".join(server_urls)
        system = f"  system: {{interval: {interval}}}\n" if interval else \
            "  system: {enabled: false}\n"
        # Each agent's local endpoint on its own port (tests run side by side).
        if not hasattr(self, "local_port"):
            self.local_port = free_port()
        self.local_url = f"http://127.0.0.1:{self.local_port}"
        listen = "" if "listen:" in extra else f"listen: 127.0.0.1:{self.local_port}\n"
        super().__init__(prefix, f"servers: [{servers}]\n"
                                 f"token: {AGENT_TOKEN}\n"
                                 f"heartbeat_interval: 1s\n{listen}"
                                 f"inputs:\n{system}{inputs}" + extra)

    def rewrite(self, server_urls, interval="1s", extra="", inputs=""):
        """Write a new config (for reload tests); the process keeps running."""
        proc, logf = self.proc, getattr(self, "logf", None)
        Agent.__init__(self, self.prefix, server_urls, interval, extra, inputs)
        self.proc, self.logf = proc, logf

    def agent_id(self):
        with open(os.path.join(self.prefix, "data", "agent-id")) as f:
            return f.read().strip()


def all_logs(server, **filters):
    """Every stored log line matching filters, oldest first (pages through
    /api/v1/logs with the cursor)."""
    import urllib.parse
    out, cursor = [], None
    while True:
        params = dict(filters, limit=10000, **({"cursor": cursor} if cursor else {}))
        params.setdefault("from", "30d")
        body = server.api("/api/v1/logs?" + urllib.parse.urlencode(params))
        out.extend(body["logs"])
        cursor = body.get("next_cursor")
        if not cursor:
            return out[::-1]


def cli(server, *args, token=API_TOKEN, timeout=30):
    env = dict(os.environ, XLUO_SERVER=server.url if hasattr(server, "url") else server)
    if token is not None:
        env["XLUO_TOKEN"] = token
    else:
        env.pop("XLUO_TOKEN", None)
    return subprocess.run([binary("xluo"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


class TestCase(unittest.TestCase):
    """Gives each test a temporary directory, removed afterwards, and stops
    every daemon it made."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="xluo-e2e-")
        self.daemons = []

    def tearDown(self):
        problems = []
        for d in self.daemons:
            try:
                d.stop()
            except AssertionError as e:
                problems.append(str(e))
            report = d.sanitizer_report()
            if report:
                problems.append(f"{d.name} sanitizer report:\n{report}")
        if os.environ.get("XLUO_KEEP_TMP"):
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("\n".join(problems))

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def server(self, name="server", extra=""):
        s = Server(self.path(name), extra)
        self.daemons.append(s)
        return s

    def agent(self, server_urls, name="agent", **kw):
        a = Agent(self.path(name), server_urls, **kw)
        self.daemons.append(a)
        return a


# ---- Shared helpers for log-shipping tests (tail, fault matrix) ----------

import base64  # noqa: E402
import collections  # noqa: E402
import hashlib  # noqa: E402
import threading  # noqa: E402
import urllib.parse  # noqa: E402


def tail_input(name, paths, **kw):
    """YAML for one `inputs.tail` item, to pass as Agent(inputs=...). Several
    inputs: drop the "  tail:\\n" header of the second and later ones."""
    lines = [f"  tail:\n    - name: {name}\n      paths: [{', '.join(paths)}]\n"]
    for k, v in kw.items():
        lines.append(f"      {k}: {v}\n")
    return "".join(lines)


class Writer:
    """Appends numbered lines to a file (O_APPEND, like an application).

    write() appends synchronously; start()/stop() run a thread that appends
    at full speed (or `rate` lines per second) until stop() or until `total`
    lines exist. noise=True gives every line ~88 characters derived from a
    hash of its number (hard to compress, still reproducible by expected()).
    """

    def __init__(self, path, tag, pad=150, noise=False):
        self.path, self.tag, self.pad, self.noise = path, tag, "x" * pad, noise
        self.n = 0
        self.lock = threading.Lock()
        self.f = open(path, "ab", buffering=0)
        self.thread = None
        self.halt = threading.Event()
        self.error = None

    def line(self, i):
        if self.noise:
            h = hashlib.blake2b(f"{self.tag}/{i}".encode(), digest_size=64).digest()
            return f"{self.tag} {i:08d} {base64.b64encode(h).decode()} {self.pad}"
        return f"{self.tag} {i:08d} {self.pad}"

    def write(self, count, batch=200):
        with self.lock:
            for start in range(0, count, batch):
                k = min(batch, count - start)
                self.f.write("".join(self.line(self.n + j) + "\n" for j in range(k)).encode())
                self.n += k

    def reopen(self):
        """After a rename rotation: the application opens its file again."""
        with self.lock:
            self.f.close()
            self.f = open(self.path, "ab", buffering=0)

    def start(self, total=None, rate=None, chunk=200):
        """Append in a thread: `chunk` lines at a time, at most `rate` lines
        per second (None: as fast as possible), stopping at `total` lines."""
        assert self.thread is None, "writer already running"
        self.halt.clear()

        def run():
            t0, base = time.monotonic(), self.n
            try:
                while not self.halt.is_set() and (total is None or self.n < total):
                    self.write(chunk if total is None else min(chunk, total - self.n))
                    if rate:
                        ahead = (self.n - base) / rate - (time.monotonic() - t0)
                        if ahead > 0:
                            self.halt.wait(ahead)
            except Exception as e:  # reported by stop()
                self.error = e
        self.thread = threading.Thread(target=run, name=f"writer-{self.tag}", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout=30):
        if self.thread:
            self.halt.set()
            self.thread.join(timeout)
            alive = self.thread.is_alive()
            self.thread = None
            if alive:
                raise AssertionError(f"writer {self.tag} did not stop within {timeout}s")
        if self.error:
            raise AssertionError(f"writer {self.tag} failed: {self.error!r}")
        return self.n

    def wait_total(self, timeout=60):
        """Wait for a writer started with `total` to finish."""
        if self.thread:
            self.thread.join(timeout)
            if self.thread.is_alive():
                raise AssertionError(f"writer {self.tag} still writing after {timeout}s "
                                     f"({self.n} lines)")
        return self.stop()

    def expected(self):
        return {self.line(i) for i in range(self.n)}

    def close(self):
        try:
            self.stop()
        finally:
            self.f.close()


def rename_rotate(path, keep=5, writer=None):
    """logrotate `create` with `rotate KEEP`: PATH.(KEEP) is deleted, PATH.i
    becomes PATH.(i+1), PATH becomes PATH.1, and the writer (if any) opens
    PATH again. Returns the deleted paths."""
    deleted = []
    lock = writer.lock if writer else threading.Lock()
    with lock:
        if os.path.exists(f"{path}.{keep}"):
            os.unlink(f"{path}.{keep}")
            deleted.append(f"{path}.{keep}")
        for i in range(keep, 0, -1):
            src = f"{path}.{i - 1}" if i > 1 else path
            if os.path.exists(src):
                os.replace(src, f"{path}.{i}")
        if writer:
            writer.f.close()
            writer.f = open(writer.path, "ab", buffering=0)
    return deleted


def log_count(server, **filters):
    """How many log lines the server stores (matching filters), from the
    histogram (cheap: no line is transferred)."""
    params = dict(filters, step="1d")
    params.setdefault("from", "30d")
    body = server.api("/api/v1/logs/histogram?" + urllib.parse.urlencode(params))
    return sum(c for _, c in body["buckets"])


def _examples(items, n=3):
    items = sorted(items)
    return ", ".join(repr(x[:60] + "..." if len(x) > 60 else x) for x in items[:n])


def compare_lines(expected, stored_by_server):
    """Compare the written lines with what each server stores.

    stored_by_server: {name: [line, ...]}. Returns (problems, report): the
    problems (missing, duplicated on one server, unexpected lines) as text,
    empty when the union equals expected with no server storing a line
    twice, and a dict with the counts (incl. "on_several": lines stored by
    more than one server)."""
    union = collections.Counter()
    problems, report = [], {"expected": len(expected)}
    seen_on = collections.Counter()
    for name, lines in stored_by_server.items():
        c = collections.Counter(lines)
        dups = {l: k for l, k in c.items() if k > 1}
        report[f"stored[{name}]"] = len(lines)
        if dups:
            problems.append(f"{len(dups)} lines stored more than once on {name} "
                            f"({sum(dups.values()) - len(dups)} extra copies), e.g. "
                            f"{_examples(dups)}")
        for l in c:
            seen_on[l] += 1
        union.update(c)
    missing = expected - set(union)
    extra = set(union) - expected
    several = [l for l, k in seen_on.items() if k > 1]
    report.update(missing=len(missing), unexpected=len(extra), on_several=len(several),
                  several_lines=sorted(several))
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} lines written are not stored (lost, "
                        f"or still held by the agent), e.g. {_examples(missing)}")
    if extra:
        problems.append(f"{len(extra)} lines stored that were never written, e.g. "
                        f"{_examples(extra)}")
    return "; ".join(problems), report


def wait_lines_exactly(expected, servers, timeout=90, settle=1.0, context=None, **filters):
    """Wait until the servers together store every line of `expected`, then
    (after `settle` seconds, to let late resends arrive) fetch everything and
    require: the union equals expected, no server stores a line twice.

    servers: a Server or {name: Server}. context(): extra text for the
    failure message (e.g. agent log tails). Returns compare_lines' report."""
    if not isinstance(servers, dict):
        servers = {"server": servers}

    def count():
        return sum(log_count(s, **filters) for s in servers.values())
    deadline = time.monotonic() + timeout
    last, stuck = -1, None
    while time.monotonic() < deadline:
        try:
            n = count()
        except Exception:  # a server restarting
            n = -1
        if n >= len(expected):
            break
        if n != last:
            last, stuck = n, time.monotonic()
        time.sleep(0.5)
    time.sleep(settle)
    stored = {name: [r["line"] for r in all_logs(s, **filters)] for name, s in servers.items()}
    problems, report = compare_lines(expected, stored)
    if problems:
        waited = ""
        if time.monotonic() >= deadline:
            waited = f" (after waiting {timeout}s" + (
                f"; the count last changed {time.monotonic() - stuck:.0f}s before"
                if stuck else "") + ")"
        raise AssertionError(f"{problems}{waited}; counts: {report}"
                             + (f"\n{context()}" if context else ""))
    return report


def counter_points(server, name="xluo_agent_collections_total", since="1h"):
    """Raw points of every series of a metric: [(labels, [[ts, value], ...])]."""
    body = server.api("/api/v1/query?" + urllib.parse.urlencode(
        {"name": name, "from": since, "agg": "raw"}))
    return [(s["labels"], s["points"]) for s in body["series"]]


def check_counter(points, first=None):
    """A counter that counts 1, 2, 3, ... (one sample per collection): the
    problems of a list of [ts, value] points (union of servers allowed) as
    text, empty when every value from the first to the last is there exactly
    once and no two points share a timestamp."""
    problems = []
    pts = sorted(points)
    ts = collections.Counter(p[0] for p in pts)
    same_ts = sorted(t for t, k in ts.items() if k > 1)
    if same_ts:
        problems.append(f"{len(same_ts)} timestamps with more than one point, e.g. {same_ts[:3]}")
    vals = collections.Counter(int(p[1]) for p in pts)
    if not vals:
        return "no points"
    dup_vals = sorted(v for v, k in vals.items() if k > 1)
    if dup_vals:
        problems.append(f"{len(dup_vals)} values stored more than once, e.g. {dup_vals[:5]}")
    lo = first if first is not None else min(vals)
    gaps = [v for v in range(lo, max(vals) + 1) if v not in vals]
    if gaps:
        problems.append(f"{len(gaps)} of {max(vals) - lo + 1} values missing between {lo} and "
                        f"{max(vals)}, e.g. {gaps[:8]}")
    order = [p[1] for p in pts]
    if any(b <= a for a, b in zip(order, order[1:])):
        problems.append("values do not increase with time")
    return "; ".join(problems)


def wait_counter(servers, until_ms, name="xluo_agent_collections_total", timeout=30,
                 first=1, context=None):
    """Wait until the servers together store a point of the counter `name`
    at or after until_ms, then require check_counter() to find nothing over
    the union of their points (first: the value the series must start at,
    None: any). Returns the union of the points."""
    if not isinstance(servers, dict):
        servers = {"server": servers}

    def points():
        pts = []
        for s in servers.values():
            for _, p in counter_points(s, name):
                pts.extend(p)
        return pts
    t0 = time.monotonic()

    def reached():
        pts = points()
        if not pts and time.monotonic() - t0 > min(10, timeout / 2):
            return "none"  # no series at all: not worth waiting the whole timeout
        return any(p[0] >= until_ms for p in pts)
    try:
        if wait_for(reached, timeout, f"a point of {name} at or after {until_ms}",
                    interval=0.5) == "none":
            raise AssertionError(f"no point of {name} stored after {time.monotonic() - t0:.0f}s")
    except AssertionError as e:
        pts = points()
        last = max(pts)[0] if pts else None
        raise AssertionError(
            f"{e}: the servers store {len(pts)} points of {name}"
            + (f", the last at {last} ({(until_ms - last) / 1000:.1f}s before)" if pts else
               " (no series at all)")
            + (f"\n{context()}" if context else "")) from None
    pts = points()
    problems = check_counter(pts, first)
    if problems:
        per = {n: sum(len(p) for _, p in counter_points(s, name)) for n, s in servers.items()}
        raise AssertionError(f"{name}: {problems} ({len(pts)} points: {per})"
                             + (f"\n{context()}" if context else ""))
    return pts


_agent_keys = None


def agent_config_keys():
    """The agent's config keys as dotted names (servers, outbox.dir, ...),
    from `xluo-agent help-config`."""
    global _agent_keys
    if _agent_keys is None:
        out = subprocess.run([binary("xluo-agent"), "help-config"], capture_output=True,
                             text=True, timeout=30).stdout
        keys, stack = set(), []
        for line in out.splitlines():
            s = line.lstrip(" ")
            if not s or s.startswith("#") or s.startswith("-") or ":" not in s:
                continue
            depth = (len(line) - len(s)) // 2
            stack[depth:] = [s.split(":", 1)[0]]
            keys.add(".".join(stack))
        _agent_keys = keys
    return _agent_keys


def yaml_keys(text):
    """Dotted names of the keys in a flow/block YAML fragment as written by
    the tests (`a: 1`, `b: {c: 1, d: 2}`, nested blocks by two spaces)."""
    keys, stack = [], []
    for line in text.splitlines():
        s = line.lstrip(" ")
        if not s or s.startswith("#") or ":" not in s:
            continue
        depth = (len(line) - len(s)) // 2
        k, rest = s.split(":", 1)
        stack[depth:] = [k.strip()]
        rest = rest.strip()
        if rest.startswith("{") and rest.endswith("}"):
            for item in rest[1:-1].split(","):
                if ":" in item:
                    keys.append(".".join(stack + [item.split(":", 1)[0].strip()]))
        elif rest:
            keys.append(".".join(stack))
    return keys


class FaultCase(TestCase):
    """Base of the fault-matrix tests (tests/e2e/test_fault_*.py): a seeded
    random generator (XLUO_FAULT_SEED to replay), agent configs whose newer
    keys are checked against what the agent knows, and failure context."""

    # Settings every fault test wants: quick retries, short timeouts.
    BASE = "retry_max_backoff: 2s\nrequest_timeout: 3s\n"
    # The shipping settings of issue 4 (pass to agent_config with the
    # test's own outbox line).
    TUNING = ("max_in_flight: 4\nbreaker_failures: 3\nbreaker_cooldown: 5s\n"
              "batch_max_age: 200ms\ncompression: zstd\n")

    def setUp(self):
        super().setUp()
        import random
        self.seed = int(os.environ.get("XLUO_FAULT_SEED") or random.randrange(1 << 30))
        self.rng = random.Random(self.seed)
        self.notes = []
        self.t0 = time.monotonic()

    def tearDown(self):
        import sys
        print(f"\n  {self.id().split('.', 1)[1]}: seed {self.seed}, "
              f"{time.monotonic() - self.t0:.1f}s"
              + "".join(f"\n  note: {n}" for n in self.notes), file=sys.stderr)
        super().tearDown()

    def agent_config(self, wanted="", required=()):
        """BASE + `wanted` (YAML lines at the top level). A key the agent does
        not know (xluo-agent help-config) fails the test at once, naming it;
        with XLUO_FAULT_LENIENT=1 (to run against an older agent) lines with
        unknown keys are left out and noted instead, unless the key is in
        `required` (dotted names)."""
        known = agent_config_keys()
        lenient = os.environ.get("XLUO_FAULT_LENIENT") == "1"
        unknown_keys = [k for k in yaml_keys(wanted) if k not in known]
        missing = [k for k in (required if lenient else unknown_keys + list(required))
                   if k not in known]
        if missing:
            self.fail(f"the agent does not know the config keys {sorted(set(missing))} this "
                      f"scenario uses (xluo-agent help-config)")
        kept, dropped = [], []
        for line in wanted.splitlines():
            unknown = [k for k in yaml_keys(line) if k not in known] if line.strip() else []
            (dropped if unknown else kept).append(line)
        if dropped:
            self.notes.append("left out (the agent does not know them yet): "
                              + "; ".join(l.strip() for l in dropped))
        return self.BASE + "".join(l + "\n" for l in kept)

    def context(self, *daemons, tail=2500):
        """Failure context: the seed, proxy/agent state, each daemon's last log lines."""
        out = [f"seed {self.seed} (XLUO_FAULT_SEED={self.seed} replays the fault schedule)"]
        for d in daemons or self.daemons:
            text = d.log()
            out.append(f"--- {d.name} {d.prefix} (last {tail} chars of {len(text)}):\n"
                       f"{text[-tail:]}")
        return "\n".join(out)

    def assert_alive(self, daemon, what=""):
        if daemon.proc is None or daemon.proc.poll() is not None:
            code = daemon.proc.returncode if daemon.proc else None
            self.fail(f"{daemon.name} is not running (exit {code}) {what}\n"
                      f"{daemon.log()[-3000:]}")


# ---- A raw Server-Sent Events client (live streams) ----------------------

import select  # noqa: E402


class SSE:
    """A raw Server-Sent Events client: HTTP/1.1 over a socket, chunked
    decoding and event parsing by hand, so that what the server sends is
    seen byte for byte (and so that the client can stop reading)."""

    def __init__(self, srv, query="", last_id=None, rcvbuf=None, token=API_TOKEN,
                 path="/api/v1/logs/stream"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", srv.port))
        head = (f"GET {path}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n")
        if last_id is not None:
            head += f"Last-Event-ID: {last_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""
        self.body = b""
        self.status = None
        self.headers = {}
        self.ended = False
        self.events = []  # (type, id, data)
        self.comments = []

    def close(self):
        self.sock.close()

    def _decode(self):
        if self.status is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            head, self.raw = self.raw[:i].decode(), self.raw[i + 4:]
            lines = head.split("\r\n")
            self.status = int(lines[0].split()[1])
            for h in lines[1:]:
                k, _, v = h.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            assert self.headers.get("transfer-encoding") == "chunked", self.headers
        while True:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i], 16)
            if len(self.raw) < i + 2 + size + 2:
                return
            self.body += self.raw[i + 2:i + 2 + size]
            self.raw = self.raw[i + 2 + size + 2:]
            if size == 0:
                self.ended = True
            self._parse()

    def _parse(self):
        while True:
            i = self.body.find(b"\n\n")
            if i < 0:
                return
            block, self.body = self.body[:i].decode(), self.body[i + 2:]
            etype, eid, data = "message", None, []
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "event":
                    etype = v
                elif k == "id":
                    eid = v
                elif k == "data":
                    data.append(v)
            if data:
                self.events.append((etype, eid, "\n".join(data)))

    def pump(self, seconds):
        """Read whatever comes within seconds."""
        deadline = time.monotonic() + seconds
        while not self.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                self.ended = True
                return
            self.raw += chunk
            self._decode()

    def wait(self, cond, timeout=20, what="events"):
        deadline = time.monotonic() + timeout
        while not cond(self):
            if time.monotonic() > deadline or self.ended:
                raise AssertionError(f"timed out waiting for {what}; have {len(self.events)} "
                                     f"events, last {self.events[-3:]}")
            self.pump(0.2)

    def logs(self):
        return [json.loads(d) for t, _, d in self.events if t == "log"]

    def lines(self):
        return [r["line"] for r in self.logs()]

    def dropped(self):
        return sum(json.loads(d)["count"] for t, _, d in self.events if t == "dropped")

    def records(self):
        """The data of the `record` events (GET /api/v1/stream)."""
        return [json.loads(d) for t, _, d in self.events if t == "record"]
