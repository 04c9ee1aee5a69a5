"""A small threaded TCP proxy for fault injection in end-to-end tests.

    p = TcpProxy(server.port)          # listens on 127.0.0.1:<random port>
    agent = Agent(..., [p.url])
    p.delay(200)                       # +200 ms per forwarded chunk
    p.stall()                          # accept, forward nothing (both ways)
    p.reset()                          # RST every connection (new ones at once)
    p.reset(after_bytes=4096)          # RST once a connection forwarded 4 KiB
    p.reset(probability=0.2)           # RST with probability 0.2 per chunk
    p.drop()                           # refuse connections (listener closed),
                                       # open ones are reset
    p.passthrough()                    # back to normal
    p.resets                           # connections reset so far
    p.close()                          # stops every thread

Modes apply at once to open connections too (a stalled connection resumes
when the mode changes; the peer may have given up meanwhile). Every thread
polls with a short timeout, so close() returns within a fraction of a second.
Standard library only.
"""
import random
import select
import socket
import struct
import threading
import time

POLL = 0.05
CHUNK = 65536


def _rst(sock):
    """Close with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    def __init__(self, proxy, client):
        self.proxy, self.client, self.upstream = proxy, client, None
        self.forwarded = 0  # bytes, both directions
        self.closed = False
        self.thread = threading.Thread(target=self.run, daemon=True, name="tcpproxy-conn")

    def close(self, reset=False):
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.upstream):
            if s is None:
                continue
            if reset:
                _rst(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass
        if reset:
            self.proxy._count_reset()

    def run(self):
        p = self.proxy
        try:
            self.upstream = socket.create_connection((p.target_host, p.target_port), timeout=5)
        except OSError:
            # The server is down: the client sees its connection closed, as
            # through a real proxy.
            self.close(reset=True)
            p._forget(self)
            return
        socks = [self.client, self.upstream]
        peer = {self.client: self.upstream, self.upstream: self.client}
        try:
            while not p._stop.is_set() and not self.closed:
                mode, arg = p.mode
                if mode == "reset" and arg.get("at_once"):
                    self.close(reset=True)
                    break
                if mode == "drop":
                    self.close(reset=True)
                    break
                if mode == "stall":
                    p._stop.wait(POLL)
                    continue
                r, _, _ = select.select(socks, [], [], POLL)
                for s in r:
                    data = s.recv(CHUNK)
                    if not data:
                        self.close()
                        break
                    mode, arg = p.mode  # may have changed while we waited
                    if mode == "delay":
                        p._stop.wait(arg["ms"] / 1000.0)
                    elif mode == "stall":
                        # hold what was read until the stall ends
                        while p.mode[0] == "stall" and not p._stop.is_set():
                            p._stop.wait(POLL)
                    elif mode == "reset":
                        limit = arg.get("after_bytes")
                        prob = arg.get("probability")
                        if limit is not None and self.forwarded + len(data) > limit:
                            keep = max(0, limit - self.forwarded)
                            if keep:
                                peer[s].sendall(data[:keep])
                            self.close(reset=True)
                            break
                        if prob is not None and p.rng.random() < prob:
                            self.close(reset=True)
                            break
                    elif mode == "drop":
                        self.close(reset=True)
                        break
                    peer[s].sendall(data)
                    self.forwarded += len(data)
                    with p.lock:
                        p.bytes += len(data)
        except OSError:
            self.close()
        finally:
            self.close()
            p._forget(self)


class TcpProxy:
    """See the module documentation."""

    def __init__(self, target_port, target_host="127.0.0.1", seed=None):
        self.target_host, self.target_port = target_host, target_port
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.mode = ("pass", {})
        self.resets = 0       # connections closed with an RST by the proxy
        self.accepted = 0     # connections accepted
        self.bytes = 0        # bytes forwarded, both directions
        self.conns = set()
        self._stop = threading.Event()
        self._listen_lock = threading.Lock()
        self.listener = None
        self.port = 0
        self._listen()
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept_loop, daemon=True,
                                       name="tcpproxy-accept")
        self.thread.start()

    # -- modes --------------------------------------------------------------

    def _set(self, mode, **arg):
        with self.lock:
            self.mode = (mode, arg)
        if mode == "drop":
            self._unlisten()
        else:
            self._listen()
        return self

    def passthrough(self):
        return self._set("pass")

    def delay(self, ms):
        return self._set("delay", ms=ms)

    def stall(self):
        return self._set("stall")

    def reset(self, after_bytes=None, probability=None):
        """No argument: every connection is reset at once (new ones when
        accepted). after_bytes=K: a connection is reset once it has forwarded
        K bytes (both directions). probability=p: each chunk resets its
        connection with probability p."""
        at_once = after_bytes is None and probability is None
        return self._set("reset", at_once=at_once, after_bytes=after_bytes,
                         probability=probability)

    def drop(self):
        """Refuse new connections (ECONNREFUSED) and reset the open ones."""
        return self._set("drop")

    # -- internals ----------------------------------------------------------

    def _listen(self):
        with self._listen_lock:
            if self.listener is not None or self._stop.is_set():
                return
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            deadline = time.monotonic() + 5
            while True:
                try:
                    s.bind(("127.0.0.1", self.port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        s.close()
                        raise
                    time.sleep(0.05)
            s.listen(128)
            s.settimeout(POLL)
            self.port = s.getsockname()[1]
            self.listener = s

    def _unlisten(self):
        with self._listen_lock:
            if self.listener is not None:
                try:  # stops listening at once, even while accept() polls it
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None

    def _accept_loop(self):
        while not self._stop.is_set():
            lst = self.listener
            if lst is None:
                self._stop.wait(POLL)
                continue
            try:
                client, _ = lst.accept()
            except (socket.timeout, OSError):
                continue
            client.settimeout(10)  # a peer that stops reading cannot block a thread forever
            with self.lock:
                self.accepted += 1
                mode, arg = self.mode
            if mode == "reset" and arg.get("at_once"):
                _rst(client)
                self._count_reset()
                continue
            c = _Conn(self, client)
            with self.lock:
                self.conns.add(c)
            c.thread.start()

    def _count_reset(self):
        with self.lock:
            self.resets += 1

    def _forget(self, c):
        with self.lock:
            self.conns.discard(c)

    def stats(self):
        with self.lock:
            return {"mode": self.mode[0], "accepted": self.accepted, "resets": self.resets,
                    "bytes": self.bytes, "open": len(self.conns)}

    def close(self, timeout=5):
        """Stop accepting, close every connection, join every thread."""
        self._stop.set()
        self._unlisten()
        self.thread.join(timeout)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.thread.join(timeout)
        for c in conns:
            c.close()
        alive = [t for t in [self.thread] + [c.thread for c in conns] if t.is_alive()]
        if alive:
            raise RuntimeError(f"tcpproxy: {len(alive)} threads did not stop")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
