"""Shared fixtures: start the real binaries on loopback and talk raw HTTP.

Servers are started with DD_READY_FD so the tests learn their real ports
(everything binds port 0) and never sleep waiting for start-up. On
teardown each server gets SIGTERM and must exit 0 with a stderr free of
sanitizer reports.
"""
import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _find(env_name, rel):
    p = os.environ.get(env_name)
    if p:
        return p
    for b in ("build-asan", "build"):
        cand = os.path.join(ROOT, b, rel)
        if os.path.exists(cand):
            return cand
    raise RuntimeError(f"{rel} not built; run make check")


DD_BIN = _find("DD_BIN", "src/devopsdefender")
TESTSERVER = _find("DD_TESTSERVER", "tests/dd-testserver")

BASE_ENV = {
    "DD_ENV": "dev",
    "DD_OWNER": "acme",
    "DD_OWNER_ID": "4242",
    "DD_OWNER_KIND": "org",
    "DD_BIND_ADDR": "127.0.0.1",
    "DD_PORT": "0",
    "DD_VM_NAME": "e2e-vm",
    "DD_AUTH_COOKIE_SECRET": "e2e-cookie-secret-of-at-least-32-bytes",
    # Agents under test mostly run without a workload runtime behind them.
    "DD_EE_WAIT_SECS": "0",
    # Each CP under test keeps its fleet in memory unless a test says so.
    "DD_STORE_PATH": ":memory:",
    # Tests never ask the Internet's DNS: a tunnel agent's name looked up
    # outside test_scrape_dns (which runs its own server) goes to a closed
    # loopback port, is refused at once and reads as a DNS failure.
    "DD_SCRAPE_DNS": "127.0.0.1:9",
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "AddressSanitizer:DEADLYSIGNAL")


class Server:
    def __init__(self, args, env=None, ready=True, timeout=15.0):
        self.log = tempfile.NamedTemporaryFile(prefix="dd-e2e-", suffix=".log",
                                               delete=False)
        full_env = dict(os.environ)
        full_env.pop("DD_MODE", None)
        full_env.update(BASE_ENV)
        full_env.update(env or {})
        self.ports = {}
        rfd = wfd = None
        pass_fds = ()
        if ready:
            rfd, wfd = os.pipe()
            full_env["DD_READY_FD"] = str(wfd)
            pass_fds = (wfd,)
        self.proc = subprocess.Popen(args, env=full_env, stdout=self.log,
                                     stderr=subprocess.STDOUT, pass_fds=pass_fds)
        if ready:
            os.close(wfd)
            line = b""
            deadline = time.monotonic() + timeout
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                r, _, _ = select.select([rfd], [], [], max(left, 0))
                if not r:
                    break
                chunk = os.read(rfd, 4096)
                if not chunk:
                    break
                line += chunk
            os.close(rfd)
            if not line.endswith(b"\n"):
                self.stop()
                raise RuntimeError(f"server not ready: {self.output()}")
            info = json.loads(line)
            self.ports = info["ports"]
            self.pid = info["pid"]

    @property
    def port(self):
        return self.ports["main"]

    def output(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def assert_clean_exit(self, timeout=20):
        rc = self.stop(timeout=timeout)
        out = self.output()
        for mark in SANITIZER_MARKS:
            assert mark not in out, out[-4000:]
        assert rc == 0, f"exit {rc}: {out[-4000:]}"
        os.unlink(self.log.name)


@pytest.fixture
def start():
    servers = []

    def _start(args, env=None, **kw):
        s = Server(args, env, **kw)
        servers.append(s)
        return s

    yield _start
    for s in servers:
        if s.proc.poll() is None:
            s.assert_clean_exit()
        else:
            out = s.output()
            for mark in SANITIZER_MARKS:
                assert mark not in out, out[-4000:]


@pytest.fixture
def testserver(start):
    return start([TESTSERVER], {"DD_HTTP_MAX_BODY_UNAUTH": "65536",
                                "DD_HTTP_MAX_BODY": "1048576"})


ITA_KEY = "e2e-local-ita-key"


@pytest.fixture(scope="session")
def local_ita():
    """One `devopsdefender ita` (the dev ITA stand-in) for the whole run."""
    s = Server([DD_BIN, "ita"], {"DD_DEV": "1", "DD_ITA_API_KEY": ITA_KEY})
    yield s
    s.assert_clean_exit()


@pytest.fixture(scope="session")
def ita_env(local_ita):
    """What a CP or agent needs to attest against the local ITA."""
    url = f"http://127.0.0.1:{local_ita.port}"
    return {"DD_DEV": "1", "DD_ITA_MODE": "local", "DD_QUOTE_PROVIDER": "sim",
            "DD_ITA_BASE_URL": url, "DD_ITA_JWKS_URL": url + "/certs",
            "DD_ITA_ISSUER": url, "DD_ITA_API_KEY": ITA_KEY}


@pytest.fixture
def cp(start, ita_env):
    return start([DD_BIN, "cp"], ita_env)


def wait_for(pred, timeout=30.0, what="condition", srv=None, interval=0.05):
    """pred()'s first truthy value, polled every `interval` seconds; an
    AssertionError naming `what` (and the tail of srv's output, when
    given) after `timeout` seconds. The timeout only bounds a failure."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            tail = srv.output()[-4000:] if srv is not None else ""
            raise AssertionError(f"timed out waiting for {what}: last {v!r}"
                                 + (f"\n{tail}" if tail else ""))
        time.sleep(interval)


# --- raw HTTP --------------------------------------------------------------

def closed_port():
    """A loopback port nothing listens on (bound, read, released): a
    connect there is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower name, value)
        self.body = body
        self.version = version

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


class Reader:
    """Reads HTTP/1.x responses off one socket, in order."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only=False):
        status_line = self._line().decode()
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode().split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        r = Response(int(status), reason, headers, b"", version)
        if head_only or r.status in (101, 204, 304) or 100 <= r.status < 200:
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            r.body = body
        elif cl is not None:
            r.body = self._exact(int(cl))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            r.body, self.buf = self.buf, b""
        return r

    def closed(self, timeout=3.0):
        """True once the peer closed (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def request(port, method="GET", path="/", headers=None, body=b"", version="1.1"):
    s = connect(port)
    try:
        send(s, method, path, headers, body, version)
        return Reader(s).response(head_only=(method == "HEAD"))
    finally:
        s.close()


def send(sock, method="GET", path="/", headers=None, body=b"", version="1.1"):
    sock.sendall(build(method, path, headers, body, version))


def build(method="GET", path="/", headers=None, body=b"", version="1.1"):
    h = {"Host": "127.0.0.1"}
    if body:
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in h.items() if v is not None) + "\r\n"
    return head.encode() + body
