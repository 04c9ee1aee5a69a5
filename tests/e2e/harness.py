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
        super().__init__(prefix, f"servers: [{servers}]\n"
                                 f"token: {AGENT_TOKEN}\n"
                                 f"heartbeat_interval: 1s\n"
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
