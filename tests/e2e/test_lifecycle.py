"""Process lifecycle: configuration errors, usage, --help/--version,
graceful shutdown with requests in flight, and the dev fleet."""
import os
import re
import signal
import socket
import subprocess
import threading
import tempfile
import time


from conftest import (BASE_ENV, DD_BIN, TESTSERVER, Reader, connect, request,
                      send, wait_for)


def run(args, env=None, timeout=10):
    full = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    full.update(env or {})
    return subprocess.run([DD_BIN] + args, env=full, capture_output=True,
                          text=True, timeout=timeout)


def test_no_mode_is_usage_error():
    r = run([])
    assert r.returncode == 2
    assert "usage: devopsdefender MODE" in r.stderr


def test_unknown_mode_is_usage_error():
    r = run(["frobnicate"])
    assert r.returncode == 2
    assert "unknown mode 'frobnicate'" in r.stderr


def test_unexpected_argument_is_usage_error():
    r = run(["cp", "--bogus"], BASE_ENV)
    assert r.returncode == 2
    assert "unexpected argument" in r.stderr


def test_version_and_help_for_every_mode():
    r = run(["--version"])
    assert r.returncode == 0
    assert re.match(r"devopsdefender \d+\.\d+\.\d+ \(build \S+\)", r.stdout)
    assert run(["--help"]).returncode == 0
    for mode in ("cp", "agent", "dev"):
        r = run([mode, "--help"])
        assert r.returncode == 0, mode
        assert f"usage: devopsdefender {mode}" in r.stdout
        assert "DD_LOG_LEVEL" in r.stdout
        assert run([mode, "--version"]).returncode == 0
    assert "DD_CP_URL" in run(["agent", "--help"]).stdout
    assert "--port-base" in run(["dev", "--help"]).stdout


def test_mode_from_environment():
    r = run(["--version"], {"DD_MODE": "agent"})
    assert r.returncode == 0
    r = run([], {"DD_MODE": "nope"})
    assert r.returncode == 2


def test_missing_config_reports_everything_once():
    r = run(["agent"], {"DD_PORT": "70000", "DD_OWNER_KIND": "team"})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "devopsdefender: fatal: configuration: invalid configuration"
    for name in ("DD_ENV", "DD_OWNER", "DD_OWNER_ID", "DD_CP_URL"):
        assert f"{name}: required but not set" in r.stderr
    assert "DD_PORT: must be an integer in [0, 65535]" in r.stderr
    assert "DD_OWNER_KIND: must be one of user org repo" in r.stderr


def test_port_in_use_is_fatal_with_one_line(ita_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = dict(BASE_ENV, DD_PORT=str(port), **ita_env)
        r = run(["cp"], env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("devopsdefender: fatal: cp:")


def test_sigterm_drains_in_flight_requests(start):
    srv = start([TESTSERVER], {"DD_DRAIN_TIMEOUT_MS": "5000"})
    results = {}

    def slow():
        results["slow"] = request(srv.port, path="/slow?ms=800")

    # A keep-alive client idle at shutdown time is closed right away.
    idle = connect(srv.port)
    send(idle, "GET", "/hello")
    idle_rd = Reader(idle)
    assert idle_rd.response().status == 200
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    srv.send_signal(signal.SIGTERM)
    assert idle_rd.closed(2)

    def refused():
        try:
            connect(srv.port, timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False
    # The listener closes at once: new connections are refused while the
    # slow request (800 ms) is still draining, not only after the exit.
    wait_for(refused, timeout=5, what="the listener to close")
    assert srv.proc.poll() is None and t.is_alive()
    t.join(5)
    r = results["slow"]
    assert r.status == 200 and r.body == b"slow\n"
    assert r.header("connection") == "close"
    assert srv.proc.wait(10) == 0


def test_drain_deadline_bounds_shutdown(start):
    srv = start([TESTSERVER], {"DD_DRAIN_TIMEOUT_MS": "300"})
    s = connect(srv.port)
    send(s, "GET", "/slow?ms=60000")
    time.sleep(0.1)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGINT)
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 3
    assert Reader(s).closed(2)
    s.close()


def test_cp_and_agent_serve_health(start, ita_env):
    cp = start([DD_BIN, "cp"], ita_env)
    agent = start([DD_BIN, "agent"], dict(ita_env, DD_API_PORT="0",
                                          DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    assert request(cp.port, path="/health").json()["service"] == "cp"
    for label in ("main", "api"):
        body = request(agent.ports[label], path="/health").json()
        assert body["service"] == "agent"
        assert body["cp_url"] == f"http://127.0.0.1:{cp.port}"


def _children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                         capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_dev_fleet_starts_prints_urls_and_stops_cleanly():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["ASAN_OPTIONS"] = BASE_ENV["ASAN_OPTIONS"]
    p = subprocess.Popen([DD_BIN, "dev", "--port-base", "0",
                          "--state-dir", tempfile.mkdtemp(prefix="dd-dev-")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    banner = ""
    deadline = time.monotonic() + 20
    while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        banner += line
    assert "Press Ctrl-C" in banner, banner
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)/health", banner)
    assert len(urls) == 3              # the CP and both agents' APIs
    cp_port = int(re.search(r"control plane\s+http://127\.0\.0\.1:(\d+)/", banner).group(1))
    assert request(cp_port, path="/health").json()["service"] == "cp"
    for port in urls:
        assert request(int(port), path="/health").status == 200
    assert re.search(r"local ITA\s+http://127\.0\.0\.1:\d+", banner)
    kids = _children_of(p.pid)
    assert len(kids) == 8              # ITA, CP, per agent a runtime, a sessiond, the agent
    p.send_signal(signal.SIGINT)
    assert p.wait(20) == 0
    err = p.stderr.read()
    assert "fleet stopped" in err
    for k in kids:
        assert not os.path.exists(f"/proc/{k}"), f"child {k} left behind"
    for mark in ("ERROR: AddressSanitizer", "runtime error:"):
        assert mark not in err


def test_dev_children_die_with_a_killed_supervisor():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    p = subprocess.Popen([DD_BIN, "dev", "--port-base", "0",
                          "--state-dir", tempfile.mkdtemp(prefix="dd-dev-")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = ""
    while "Press Ctrl-C" not in out:
        line = p.stdout.readline()
        assert line
        out += line
    kids = _children_of(p.pid)
    p.kill()
    p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            os.path.exists(f"/proc/{k}") and "Z" not in open(f"/proc/{k}/stat").read().split()[2]
            for k in kids):
        time.sleep(0.1)
    for k in kids:
        if os.path.exists(f"/proc/{k}"):
            assert open(f"/proc/{k}/stat").read().split()[2] == "Z"


def test_dev_rejects_bad_flags():
    r = run(["dev", "--port-base", "99999"])
    assert r.returncode == 2
    r = run(["dev", "--frob"])
    assert r.returncode == 2
