"""The agent in front of the REAL local runtime (`devopsdefender runtime`),
driven through the agent's HTTP API with GitHub OIDC tokens from the fake
issuer; and the agent registering with a scripted control plane
(fake_cp.py). Fleet owner: org acme (4242)."""
import json
import os
import shutil
import socket
import tempfile
import threading
import time

import pytest

from conftest import DD_BIN, request, wait_for
from fake_cp import FakeCP
from fake_oidc import FakeOIDC

OWNER = {"DD_OWNER": "acme", "DD_OWNER_ID": "4242", "DD_OWNER_KIND": "org"}
FAST_RUNTIME = {"DD_RUNTIME_STOP_GRACE_MS": "500",
                "DD_RUNTIME_RESTART_BACKOFF_MS": "100"}
LOOP = ["/bin/sh", "-c",
        "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"]


# --- fixtures ------------------------------------------------------------------

@pytest.fixture
def oidc():
    o = FakeOIDC().start()
    yield o
    o.stop()


@pytest.fixture
def sockdir():
    # sun_path holds 108 bytes: pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="ddar-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def runtime(start, sockdir):
    path = os.path.join(sockdir, "ee", "agent.sock")
    rt = start([DD_BIN, "runtime"], dict(FAST_RUNTIME, EE_SOCKET_PATH=path,
                                         DD_DEV="1", DD_QUOTE_PROVIDER="sim"))
    rt.sock = path
    return rt


def agent_env(ita_env, oidc, sock, **extra):
    env = dict(ita_env, **OWNER, **oidc.env(), DD_API_PORT="0",
               DD_CP_URL="http://127.0.0.1:9", EE_SOCKET_PATH=sock,
               DD_EE_WAIT_SECS="5")
    env.update(extra)
    return env


@pytest.fixture
def agent(start, ita_env, oidc, runtime):
    return start([DD_BIN, "agent"], agent_env(ita_env, oidc, runtime.sock))


def call(agent, method, path, token=None, body=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else b""
    return request(agent.port, method, path, h, data)


def owner_call(agent, oidc, method, path, body=None):
    return call(agent, method, path, oidc.token("acme", 4242), body)


def health(agent):
    r = request(agent.port, "GET", "/health")
    assert r.status == 200, r.body
    return r.json()


def workload(agent, app):
    for w in health(agent)["workloads"]:
        if w["app_name"] == app:
            return w
    return None


def wait_workload(agent, app, pred, timeout=12.0, what=None):
    """The agent refreshes its view of the runtime every 5 s (and right
    after a deploy): poll its /health until app's entry satisfies pred."""
    return wait_for(lambda: (lambda w: w if w and pred(w) else None)(
        workload(agent, app)), timeout, what or f"{app} in /health")


def deploy(agent, oidc, **spec):
    r = owner_call(agent, oidc, "POST", "/deploy", spec)
    assert r.status == 200, r.body
    assert r.json()["ok"] is True and r.json()["status"] == "deploying"
    return r.json()["id"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# --- deploy, logs, exits -------------------------------------------------------

def test_restart_policy_passes_through_the_agent(agent, oidc):
    """The spec's "restart" reaches the runtime: "no" leaves a failing
    workload down at once; a value outside the enum never gets there."""
    deploy(agent, oidc, app_name="never", restart="no",
           cmd=["/bin/sh", "-c", "echo once; exit 3"])
    w = wait_workload(agent, "never", lambda w: w["status"] == "failed",
                      what="never failed")
    assert w["restarts"] == 0 and w["exit_code"] == 3
    r = owner_call(agent, oidc, "POST", "/deploy",
                   {"app_name": "bad", "cmd": ["true"], "restart": "sometimes"})
    assert r.status == 400 and r.json()["code"] == "bad_workload"
    assert "restart" in r.json()["message"]


def test_deploy_runs_logs_and_exits_through_the_agent(agent, oidc):
    loop = deploy(agent, oidc, app_name="loop", cmd=LOOP)
    # Exits 3 every time: on-failure restarts it, then gives up.
    flaky = deploy(agent, oidc, app_name="flaky",
                   cmd=["/bin/sh", "-c", "echo flaky run; exit 3"])
    # Exits 0: completed, never restarted.
    once = deploy(agent, oidc, app_name="once",
                  cmd=["/bin/sh", "-c", "echo done"])
    # (No "restart" field: every one gets the default, on-failure.)
    assert len({loop, flaky, once}) == 3
    w = wait_workload(agent, "loop", lambda w: w["status"] == "running")
    assert w["id"] == loop and isinstance(w["pid"], int) and w["pid"] > 1
    assert w["exit_code"] is None and w["restarts"] == 0
    # The workload is a real child of the runtime.
    assert os.path.exists(f"/proc/{w['pid']}")
    h = wait_for(lambda: (lambda h: h if len(h["deployments"]) == 3
                          else None)(health(agent)), timeout=12,
                 what="three deployments in /health")
    assert h["runtime_reachable"] is True and h["runtime_sealed"] is False
    assert h["attestation_type"] == "simulated"
    assert sorted(h["deployments"]) == ["flaky", "loop", "once"]
    assert h["deployment_count"] == 3
    assert "customer_workload_deployed" in h["integrity_reasons"]

    def lines():
        r = owner_call(agent, oidc, "GET", "/logs/loop")
        assert r.status == 200, r.body
        assert r.json()["ok"] is True
        return r.json()["lines"]
    got = wait_for(lambda: (lambda ls: ls if len(ls) >= 5 else None)(lines()),
                   what="loop log lines")
    assert got[:5] == [f"line {i}" for i in range(5)]

    f = wait_workload(agent, "flaky", lambda w: w["status"] == "failed",
                      what="flaky given up")
    assert f["pid"] is None and f["exit_code"] == 3
    assert f["restarts"] == 5   # DD_RUNTIME_RESTART_MAX's default
    assert f["error_message"] == \
        "exited with code 3; gave up after 5 restarts in a row"
    r = owner_call(agent, oidc, "GET", "/logs/flaky")
    assert r.status == 200 and r.json()["lines"] == ["flaky run"] * 6
    o = wait_workload(agent, "once", lambda w: w["status"] == "completed")
    assert o["exit_code"] == 0 and o["restarts"] == 0 and o["pid"] is None
    r = owner_call(agent, oidc, "GET", "/logs/once")
    assert r.status == 200 and r.json()["lines"] == ["done"]
    # The loop is still going through all of it.
    assert workload(agent, "loop")["status"] == "running"
    r = owner_call(agent, oidc, "GET", "/logs/nope")
    assert r.status == 404 and r.json()["code"] == "not_found"


# --- exec ----------------------------------------------------------------------

def test_exec_output_and_timeout(agent, oidc):
    r = owner_call(agent, oidc, "POST", "/exec",
                   {"cmd": ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"]})
    assert r.status == 200, r.body
    assert r.json() == {"ok": True, "exit_code": 7, "stdout": "out\n",
                        "stderr": "err\n"}
    t0 = time.monotonic()
    r = owner_call(agent, oidc, "POST", "/exec",
                   {"cmd": ["sleep", "30"], "timeout_secs": 1})
    took = time.monotonic() - t0
    # The runtime's own error reply, passed through verbatim.
    assert r.status == 200, r.body
    assert r.json() == {"ok": False, "error": "command timed out after 1s"}
    assert 0.9 <= took < 5
    r = owner_call(agent, oidc, "POST", "/exec", {"cmd": ["no-such-command-x"]})
    assert r.status == 200
    assert r.json()["ok"] is False
    assert r.json()["error"].startswith("spawn failed: ")


# --- auth ----------------------------------------------------------------------

def test_auth_failures_on_every_route(agent, oidc):
    routes = [("POST", "/deploy", {"app_name": "x", "cmd": ["true"]}),
              ("POST", "/exec", {"cmd": ["true"]}),
              ("GET", "/logs/x", None)]
    for method, path, body in routes:
        r = call(agent, method, path, None, body)
        assert r.status == 401, (path, r.body)
        r = call(agent, method, path, oidc.token("evil", 666), body)
        assert r.status == 403 and r.json()["code"] == "wrong_owner", path
        # The right name with another id is a stranger too.
        r = call(agent, method, path, oidc.token("acme", 4243), body)
        assert r.status == 403, path
        tok = oidc.token("acme", 4242)
        first = call(agent, method, path, tok, body)
        assert first.status in (200, 404), (path, first.body)
        r = call(agent, method, path, tok, body)
        assert r.status == 401 and r.json()["code"] == "replayed", path
    # Nothing the strangers sent reached the runtime: only the owner's x.
    wait_for(lambda: health(agent)["deployments"] == ["x"], timeout=12,
             what="only the owner's deployment")


# --- the runtime gone or broken --------------------------------------------------

def test_runtime_down_is_502_and_health_notices(agent, oidc, runtime):
    deploy(agent, oidc, app_name="loop", cmd=LOOP)
    assert health(agent)["runtime_reachable"] is True
    assert runtime.stop() == 0            # SIGTERM: stops its workloads too
    assert not os.path.exists(runtime.sock)
    r = owner_call(agent, oidc, "POST", "/deploy",
                   {"app_name": "again", "cmd": ["true"]})
    assert r.status == 502 and r.json()["code"] == "upstream_failed", r.body
    for method, path, body in [("POST", "/exec", {"cmd": ["true"]}),
                               ("GET", "/logs/loop", None)]:
        r = owner_call(agent, oidc, method, path, body)
        assert r.status == 502 and r.json()["code"] == "upstream_failed", path
    # The background poll (every 5 s) notices; /health never fails.
    h = wait_for(lambda: (lambda h: h if h["runtime_reachable"] is False
                          else None)(health(agent)), timeout=12,
                 what="runtime_reachable false")
    assert h["ok"] is True and h["workloads"] == []


class JunkRuntime:
    """A unix socket that answers every request line with junk."""

    def __init__(self, path, reply):
        self.path = path
        self.reply = reply
        self.seen = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    c.settimeout(5)
                    buf = b""
                    while b"\n" not in buf:
                        d = c.recv(65536)
                        if not d:
                            break
                        buf += d
                    self.seen += 1
                    c.sendall(self.reply)
                except OSError:
                    pass

    def stop(self):
        self.sock.close()


@pytest.mark.parametrize("junk,why", [
    (b"this is not json\n", "invalid JSON at line 1 column 4"),
    (b"[1,2,3]\n", "reply is not a JSON object"),
    (b'{"ok": tru\n', "invalid JSON at line 1 column 10"),
    (b"\x00\xff\xfe garbage\n", "invalid JSON")])
def test_runtime_answering_junk_is_502(agent, oidc, runtime, junk, why):
    assert runtime.stop() == 0
    j = JunkRuntime(runtime.sock, junk)
    try:
        for method, path, body in [
                ("POST", "/deploy", {"app_name": "a", "cmd": ["true"]}),
                ("POST", "/exec", {"cmd": ["true"]}),
                ("GET", "/logs/a", None)]:
            r = owner_call(agent, oidc, method, path, body)
            assert r.status == 502, (path, r.status, r.body)
            e = r.json()
            assert e["code"] == "upstream_failed", e
            assert e["message"].startswith("the workload runtime failed: "), e
            assert why in e["message"], e
        assert j.seen >= 3
        h = wait_for(lambda: (lambda h: h if h["runtime_reachable"] is False
                              else None)(health(agent)), timeout=12,
                     what="runtime_reachable false")
        assert h["ok"] is True
    finally:
        j.stop()


# --- a flooding workload ------------------------------------------------------------

# ASan keeps 256 MiB of freed memory in quarantine by default: measured
# as is, every allocation the flood churns through looks like growth.
SMALL_QUARANTINE = {"ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:"
                                    "quarantine_size_mb=4"}


def test_flooding_workload_keeps_memory_bounded(start, sockdir, ita_env, oidc):
    path = os.path.join(sockdir, "ee", "agent.sock")
    runtime = start([DD_BIN, "runtime"], dict(
        FAST_RUNTIME, **SMALL_QUARANTINE, EE_SOCKET_PATH=path, DD_DEV="1",
        DD_QUOTE_PROVIDER="sim"))
    agent = start([DD_BIN, "agent"], agent_env(ita_env, oidc, path,
                                               **SMALL_QUARANTINE))
    before_rt, before_agent = rss_kib(runtime.pid), rss_kib(agent.pid)
    long_line = "x" * 4000
    deploy(agent, oidc, app_name="flood", cmd=["yes", long_line])
    wait_workload(agent, "flood", lambda w: w["status"] == "running")
    peak_rt = peak_agent = 0
    t_end = time.monotonic() + 4
    answered = 0
    while time.monotonic() < t_end:
        r = owner_call(agent, oidc, "GET", "/logs/flood")
        assert r.status == 200, r.body[:300]
        lines = r.json()["lines"]
        assert lines and all(ln == long_line for ln in lines[-10:])
        answered += 1
        peak_rt = max(peak_rt, rss_kib(runtime.pid))
        peak_agent = max(peak_agent, rss_kib(agent.pid))
        time.sleep(0.1)
    assert answered >= 5
    # The runtime keeps 1 MiB of log per deployment; nothing grows with
    # the gigabytes the workload writes.
    assert (peak_rt - before_rt) < 64 * 1024, (before_rt, peak_rt)
    assert (peak_agent - before_agent) < 64 * 1024, (before_agent, peak_agent)
    assert workload(agent, "flood")["status"] == "running"
    assert health(agent)["runtime_reachable"] is True


# --- registration against a scripted CP ------------------------------------------------

@pytest.fixture
def fake_cp():
    holder = []

    def _make(script=()):
        c = FakeCP(script).start()
        holder.append(c)
        return c
    yield _make
    for c in holder:
        c.stop()


def reg_agent(start, ita_env, oidc, runtime, cp, **extra):
    return start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, runtime.sock, DD_CP_URL=cp.url,
        DD_REGISTER_BACKOFF_MS="50", **extra))


def registered(agent):
    return wait_for(lambda: health(agent)["agent_id"], timeout=12,
                    what="registration")


def test_registration_retries_after_503(start, ita_env, oidc, runtime, fake_cp):
    busy = (503, {}, {"error": "busy", "code": "unavailable"})
    cp = fake_cp([busy, busy])
    a = reg_agent(start, ita_env, oidc, runtime, cp)
    assert registered(a) == cp.agent_id
    regs = cp.registrations()
    assert len(regs) == 3
    # A fresh nonce for every attempt, each one bound into its attempt.
    assert cp.count("GET", "/register/nonce") == 3
    assert len({r["nonce"] for r in regs}) == 3
    for r in regs:
        assert r["vm_name"] == "e2e-vm" and r["ita_token"]
        assert r["noise_pubkey"] == health(a)["noise"]["pubkey_hex"]
    assert "registration attempt 2 failed" in a.output()
    # Back-off of 5n units of DD_REGISTER_BACKOFF_MS / 5: 50 ms, then 100.
    t = cp.register_times()
    assert t[1] - t[0] >= 0.045 and t[2] - t[1] >= 0.095, t


def test_registration_retries_after_429(start, ita_env, oidc, runtime, fake_cp):
    cp = fake_cp([(429, {"Retry-After": "1"},
                   {"error": "slow down", "code": "rate_limited"})])
    a = reg_agent(start, ita_env, oidc, runtime, cp)
    assert registered(a) == cp.agent_id
    assert len(cp.registrations()) == 2
    assert cp.count("GET", "/register/nonce") == 2
    # The CP asked for a second: the agent waited at least that long.
    t = cp.register_times()
    assert t[1] - t[0] >= 0.95, t


def test_registration_refused_is_fatal(start, ita_env, oidc, runtime, fake_cp):
    cp = fake_cp([(401, {}, {"error": "token binds another key",
                             "code": "binding_mismatch"})])
    a = reg_agent(start, ita_env, oidc, runtime, cp)
    assert a.proc.wait(15) == 1
    out = a.output()
    assert "registration refused" in out and "binding_mismatch" in out
    # Refused once: never tried again.
    assert len(cp.registrations()) == 1
