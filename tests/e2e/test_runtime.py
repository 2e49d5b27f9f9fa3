"""`devopsdefender runtime`: the local EasyEnclave-compatible runtime,
driven over its unix socket by a small NDJSON client (the protocol of
spec/integrations.md section 6), with real child processes checked in
/proc."""
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import DD_BIN, ROOT
from unix_ndjson import Conn

RELEASES = os.path.join(ROOT, "tests", "data", "releases")
HELLO = os.path.join(RELEASES, "acme", "hello", "v1", "hello")
TOKEN = "ab" * 32

FAST = {"DD_RUNTIME_STOP_GRACE_MS": "500",
        "DD_RUNTIME_RESTART_BACKOFF_MS": "100"}


# --- a small NDJSON client: unix_ndjson.Conn ---------------------------------


def call(path, obj, token=None):
    """One exchange per connection, as DD's client does it: write the
    request, shut the write half, read one line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(path)
    if token is not None:
        obj = dict(obj, token=token)
    s.sendall(json.dumps(obj).encode() + b"\n")
    s.shutdown(socket.SHUT_WR)
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    return json.loads(buf)


def wait_for(fn, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last {v!r}")
        time.sleep(0.05)


# --- /proc -------------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid, pgrp, session) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[3])


def live_in_session(sid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[0] not in ("Z", "X") and (st[2] == sid or st[3] == sid):
            out.append(int(name))
    return out


def children_of(ppid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[1] == ppid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


# --- fixtures ----------------------------------------------------------------

class Runtime:
    def __init__(self, server, path, token=None):
        self.server = server
        self.path = path
        self.token = token  # sent by the helpers below

    def call(self, obj, token=None):
        return call(self.path, obj, token or self.token)

    def conn(self, token=None):
        return Conn(self.path, token)

    def deployment(self, dep_id):
        for d in self.call({"method": "list"})["deployments"]:
            if d["id"] == dep_id:
                return d
        return None

    def wait_status(self, dep_id, status, timeout=10.0):
        return wait_for(lambda: (lambda d: d if d and d["status"] == status
                                 else None)(self.deployment(dep_id)),
                        timeout, f"{dep_id} {status}")

    def deploy(self, **spec):
        r = self.call(dict({"method": "deploy"}, **spec))
        assert r["ok"] is True and r["status"] == "deploying", r
        return r["id"]

    def logs(self, dep_id, tail=None):
        req = {"method": "logs", "id": dep_id}
        if tail is not None:
            req["tail"] = tail
        r = self.call(req)
        assert r["ok"] is True, r
        return r["lines"]


@pytest.fixture
def tmpdir_short():
    # sun_path holds 108 bytes: pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="ddrt-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def runtime(start, tmpdir_short):
    def _runtime(env=None, sock=None):
        path = sock or os.path.join(tmpdir_short, "ee", "agent.sock")
        full = {"EE_SOCKET_PATH": path}
        full.update(FAST)
        full.update(env or {})
        s = start([DD_BIN, "runtime"], full)
        return Runtime(s, path, full.get("EE_TOKEN"))
    return _runtime


SHELL_LOOP = ["sh", "-c",
              "i=0; while :; do echo tick $i; echo err $i >&2; "
              "i=$((i+1)); sleep 0.1; done"]


# --- health, socket ----------------------------------------------------------

def test_health_says_not_sealed(runtime):
    rt = runtime()
    r = rt.call({"method": "health"})
    assert r["ok"] is True
    assert r["sealed"] is False
    assert r["runtime"] == "devopsdefender-local"
    assert r["attestation_type"] == "tdx"
    assert r["workloads"] == 0
    assert isinstance(r["uptime_secs"], int)


def test_socket_is_0600_in_a_private_directory(runtime):
    rt = runtime()
    st = os.lstat(rt.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(rt.path)).st_mode) == 0o700


def test_stale_socket_is_replaced_live_one_is_not(runtime, tmpdir_short):
    path = os.path.join(tmpdir_short, "stale.sock")
    old = socket.socket(socket.AF_UNIX)
    old.bind(path)
    old.close()  # the file stays behind, nobody listens
    rt = runtime(sock=path)
    assert rt.call({"method": "health"})["ok"] is True
    second = subprocess.run([DD_BIN, "runtime"], capture_output=True,
                            text=True, timeout=20,
                            env=dict(os.environ, EE_SOCKET_PATH=path))
    assert second.returncode == 1
    assert "another process is listening" in second.stderr
    assert rt.call({"method": "health"})["ok"] is True


def test_a_file_in_the_way_is_not_removed(tmpdir_short):
    path = os.path.join(tmpdir_short, "not-a-socket")
    with open(path, "w") as f:
        f.write("keep me")
    r = subprocess.run([DD_BIN, "runtime"], capture_output=True, text=True,
                       timeout=20, env=dict(os.environ, EE_SOCKET_PATH=path))
    assert r.returncode == 1
    assert "not a socket" in r.stderr
    with open(path) as f:
        assert f.read() == "keep me"


# --- deploy, list, logs ------------------------------------------------------

def test_deploy_list_logs(runtime):
    rt = runtime()
    dep = rt.deploy(app_name="loop", cmd=SHELL_LOOP)
    d = rt.wait_status(dep, "running")
    pid = d["pid"]
    assert isinstance(pid, int) and pid > 1
    assert d["app_name"] == "loop"
    assert d["source"].startswith("sh -c i=0")
    assert d["started_at"].endswith("Z") and "T" in d["started_at"]
    assert d["exit_code"] is None and d["restarts"] == 0
    # Its own session and process group, not the runtime's.
    _, ppid, pgrp, sid = proc_stat(pid)
    assert ppid == rt.server.pid
    assert pgrp == pid and sid == pid
    assert proc_stat(rt.server.pid)[2] != pgrp
    wait_for(lambda: len(rt.logs(dep)) >= 6, what="log lines")
    lines = rt.logs(dep)
    assert any(ln.startswith("tick ") for ln in lines)
    assert any(ln.startswith("err ") for ln in lines)
    assert len(rt.logs(dep, tail=2)) == 2
    assert rt.logs(dep, tail=0) == []
    assert rt.call({"method": "health"})["workloads"] == 1


def test_logs_errors(runtime):
    rt = runtime()
    assert rt.call({"method": "logs"}) == {"ok": False, "error": "missing id"}
    assert rt.call({"method": "logs", "id": "nope"}) == {
        "ok": False, "error": "deployment not found"}
    dep = rt.deploy(app_name="quiet", cmd=["sleep", "30"])
    r = rt.call({"method": "logs", "id": dep, "tail": -1})
    assert r["ok"] is False and "tail" in r["error"]


def test_env_is_given_and_secrets_are_not(runtime):
    rt = runtime({"EE_TOKEN": TOKEN, "DD_DEV": "1"})
    script = ("echo FOO=$FOO; echo TOKEN=${EE_TOKEN:-none}; "
              "echo MODE=${DD_MODE:-none}; echo DEV=${DD_DEV:-none}; "
              "echo SOCK=$EE_SOCKET_PATH")
    r = rt.call({"method": "deploy", "app_name": "env", "cmd": ["sh", "-c", script],
                 "env": ["FOO=bar=baz", "NOEQUALS", "=empty"]}, token=TOKEN)
    assert r["ok"] is True, r
    rt.wait_status(r["id"], "completed")
    lines = rt.logs(r["id"])
    assert lines == ["FOO=bar=baz", "TOKEN=none", "MODE=none", "DEV=none",
                     f"SOCK={rt.path}"]


def test_replacing_an_app_stops_the_old_one_first(runtime):
    rt = runtime()
    first = rt.deploy(app_name="web", cmd=["sh", "-c", "trap '' TERM; echo v1; "
                                          "while :; do sleep 0.1; done"])
    old_pid = rt.wait_status(first, "running")["pid"]
    second = rt.deploy(app_name="web", cmd=["sh", "-c", "echo v2; sleep 30"])
    deps = [d for d in rt.call({"method": "list"})["deployments"]
            if d["app_name"] == "web"]
    assert [d["id"] for d in deps] == [second]
    d = rt.wait_status(second, "running")
    # The old one ignored SIGTERM: it took the grace period and SIGKILL.
    assert live_in_session(old_pid) == []
    assert d["pid"] != old_pid
    wait_for(lambda: rt.logs(second) == ["v2"], what="v2 log")


def test_stop(runtime):
    rt = runtime()
    dep = rt.deploy(app_name="s", cmd=["sleep", "30"])
    pid = rt.wait_status(dep, "running")["pid"]
    assert rt.call({"method": "stop", "id": dep}) == {"ok": True}
    wait_for(lambda: rt.deployment(dep)["pid"] is None, what="pid gone")
    assert rt.deployment(dep)["status"] == "stopped"
    assert live_in_session(pid) == []
    r = rt.call({"method": "stop", "id": dep})
    assert r == {"ok": False,
                 "error": "cannot stop deployment in 'stopped' status"}
    assert rt.call({"method": "stop", "id": "x"})["error"] == \
        "deployment not found"
    assert rt.call({"method": "stop"})["error"] == "missing id"


def test_deploy_validation(runtime):
    rt = runtime()
    for bad, word in [({"app_name": "../x", "cmd": ["true"]}, "app_name"),
                      ({"app_name": "", "cmd": ["true"]}, "app_name"),
                      ({"cmd": "echo hi"}, "cmd"),
                      ({"cmd": ["a", 1]}, "cmd"),
                      ({"env": "A=b", "cmd": ["true"]}, "env"),
                      ({"tty": "yes", "cmd": ["true"]}, "tty"),
                      ({"restart": "sometimes", "cmd": ["true"]}, "restart"),
                      ({"github_release": "acme/hello"}, "github_release")]:
        r = rt.call(dict({"method": "deploy"}, **bad))
        assert r["ok"] is False, bad
        assert r["error"].startswith("invalid deploy request: "), r
        assert word in r["error"], r
    dep = rt.deploy()  # every field optional; nothing to run
    d = rt.wait_status(dep, "failed")
    assert d["app_name"] == "unnamed"
    assert d["error_message"] == "neither github_release nor cmd specified"
    dep = rt.deploy(app_name="nope", cmd=["/definitely/not/here"])
    d = rt.wait_status(dep, "failed")
    assert d["error_message"].startswith("spawn failed: ")


def test_tty_workload_runs_on_a_pty(runtime):
    rt = runtime()
    dep = rt.deploy(app_name="tty", tty=True,
                    cmd=["sh", "-c", "tty; echo TERM=$TERM"])
    rt.wait_status(dep, "completed")
    lines = rt.logs(dep)
    assert lines[0].startswith("/dev/pts/"), lines
    assert lines[1] == "TERM=xterm-256color"


# --- restart policy ----------------------------------------------------------

def test_failing_app_is_restarted_then_given_up(runtime):
    rt = runtime({"DD_RUNTIME_RESTART_MAX": "2"})
    dep = rt.deploy(app_name="flaky", cmd=["sh", "-c", "echo run; exit 3"])
    d = rt.wait_status(dep, "failed")
    assert d["restarts"] == 2
    assert d["exit_code"] == 3
    assert d["error_message"] == \
        "exited with code 3; gave up after 2 restarts in a row"
    assert rt.logs(dep) == ["run", "run", "run"]


def test_restart_waits_with_back_off(runtime):
    rt = runtime({"DD_RUNTIME_RESTART_BACKOFF_MS": "1500"})
    dep = rt.deploy(app_name="crash", cmd=["sh", "-c", "exit 1"])
    d = rt.wait_status(dep, "restarting")
    assert d["pid"] is None and d["exit_code"] == 1
    time.sleep(0.5)
    assert rt.deployment(dep)["restarts"] == 0
    wait_for(lambda: rt.deployment(dep)["restarts"] >= 1, what="restart")


def test_restart_policies(runtime):
    rt = runtime()
    ok = rt.deploy(app_name="once", cmd=["true"])
    assert rt.wait_status(ok, "completed")["restarts"] == 0
    no = rt.deploy(app_name="no", cmd=["sh", "-c", "exit 4"], restart="no")
    d = rt.wait_status(no, "failed")
    assert d["restarts"] == 0 and d["error_message"] == "exited with code 4"
    always = rt.deploy(app_name="always", cmd=["true"], restart="always")
    wait_for(lambda: rt.deployment(always)["restarts"] >= 2, what="restarts")
    killed = rt.deploy(app_name="killed", cmd=["sh", "-c", "kill -9 $$"],
                       restart="no")
    d = rt.wait_status(killed, "failed")
    assert d["exit_code"] == -1
    assert d["error_message"] == "killed by signal 9"


# --- exec ----------------------------------------------------------------------

def test_exec_output_exit_code_and_errors(runtime):
    rt = runtime({"DD_RUNTIME_EXEC_MAX_OUTPUT": "4096"})
    r = rt.call({"method": "exec", "cmd": ["sh", "-c",
                                           "echo out; echo err >&2; exit 7"]})
    assert r == {"ok": True, "exit_code": 7, "stdout": "out\n",
                 "stderr": "err\n"}
    r = rt.call({"method": "exec", "cmd": ["sh", "-c", "kill -TERM $$"]})
    assert r["ok"] is True and r["exit_code"] == -1
    r = rt.call({"method": "exec", "cmd": ["sh", "-c",
                                           "head -c 100000 /dev/zero | tr '\\0' x"]})
    assert r["ok"] is True and r["exit_code"] == 0
    assert r["stdout"] == "x" * 4096 and r["stdout_truncated"] is True
    r = rt.call({"method": "exec", "cmd": ["printf", "\\377\\376ok"]})
    assert r["stdout"] == "\ufffd\ufffdok"
    assert rt.call({"method": "exec"})["error"] == "missing cmd array"
    assert rt.call({"method": "exec", "cmd": []})["error"] == \
        "cmd array is empty"
    r = rt.call({"method": "exec", "cmd": ["no-such-command-here"]})
    assert r["ok"] is False and r["error"].startswith("spawn failed: ")
    r = rt.call({"method": "exec", "cmd": ["true"], "timeout_secs": 0})
    assert r["ok"] is False and "timeout_secs" in r["error"]


def test_exec_timeout_kills_the_whole_group(runtime, tmpdir_short):
    rt = runtime()
    marker = os.path.join(tmpdir_short, "pid")
    t0 = time.monotonic()
    r = rt.call({"method": "exec", "timeout_secs": 1,
                 "cmd": ["sh", "-c", f"sleep 60 & echo $! > {marker}; "
                         "trap '' TERM; wait"]})
    assert r == {"ok": False, "error": "command timed out after 1s"}
    assert time.monotonic() - t0 < 5
    with open(marker) as f:
        child = int(f.read())
    wait_for(lambda: proc_stat(child) is None or proc_stat(child)[0] == "Z",
             what="background child gone")


# --- attach --------------------------------------------------------------------

def test_attach_echoes_through_the_pty(runtime):
    rt = runtime()
    c = rt.conn()
    c.send(b'{"method":"attach","cmd":["/bin/sh"]}\n')
    assert c.reply() == {"ok": True, "attached": True}
    c.send(b"echo pty-$((6*7)); tty\n")
    out = c.read_until(b"/dev/pts/")
    assert b"pty-42" in out
    assert b"/dev/pts/" in out
    c.send(b"exit\n")
    assert c.closed()
    c.close()


def test_attach_client_going_away_stops_the_shell(runtime):
    rt = runtime()
    c = rt.conn()
    # Keystrokes right behind the request are not lost.
    c.send(b'{"method":"attach"}\necho "pid=$$="\n')
    assert c.reply() == {"ok": True, "attached": True}
    c.read_until(b"=\r\n")
    m = re.search(rb"pid=(\d+)=", c.buf)
    assert m, c.buf
    pid = int(m.group(1))
    assert proc_stat(pid)[3] == pid  # a session of its own
    c.close()
    wait_for(lambda: live_in_session(pid) == [], what="shell stopped")


def test_attach_spawn_failure_is_a_json_error(runtime):
    rt = runtime()
    c = rt.conn()
    r = c.call({"method": "attach", "cmd": ["/no/such/shell"]})
    assert r["ok"] is False and r["error"].startswith("spawn failed: ")
    assert c.call({"method": "health"})["ok"] is True
    r = c.call({"method": "attach", "cmd": "sh"})
    assert r == {"ok": False, "error": "missing cmd array"}


# --- github_release --------------------------------------------------------------

def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def release(**kw):
    spec = {"repo": "acme/hello", "asset": "hello", "tag": "v1"}
    spec.update(kw)
    return {k: v for k, v in spec.items() if v is not None}


def test_release_from_local_dir_with_sha256(runtime):
    rt = runtime({"DD_RUNTIME_RELEASES_DIR": RELEASES})
    good = rt.deploy(app_name="rel", cmd=["ignored", "a", "b"],
                     github_release=release(sha256=sha(HELLO)))
    d = rt.wait_status(good, "completed")
    assert d["source"] == "acme/hello@v1"
    assert rt.logs(good) == ["hello from release v1: a b"]
    bad = rt.deploy(app_name="bad", cmd=["x"],
                    github_release=release(sha256="00" * 32))
    d = rt.wait_status(bad, "failed")
    assert "sha256 mismatch" in d["error_message"]
    assert sha(HELLO) in d["error_message"]
    # Without a digest the copy still runs; tagless means "latest".
    plain = rt.deploy(app_name="plain", cmd=["x"],
                      github_release=release(tag=None, rename="hi"))
    d = rt.wait_status(plain, "completed")
    assert d["source"] == "acme/hello@latest"
    assert rt.logs(plain) == ["hello from release v1: "]
    fetch = rt.deploy(app_name="fetch", github_release=release())
    rt.wait_status(fetch, "completed")
    missing = rt.deploy(app_name="missing", cmd=["x"],
                        github_release=release(tag="v9"))
    d = rt.wait_status(missing, "failed")
    assert "not in the local releases" in d["error_message"]


def test_release_path_traversal_is_refused(runtime, tmpdir_short):
    rels = os.path.join(tmpdir_short, "rels")
    shutil.copytree(RELEASES, rels, symlinks=True)
    secret = os.path.join(tmpdir_short, "secret")
    with open(secret, "w") as f:
        f.write("#!/bin/sh\necho leaked\n")
    os.symlink(secret, os.path.join(rels, "acme", "hello", "v1", "escape"))
    rt = runtime({"DD_RUNTIME_RELEASES_DIR": rels})
    for bad in [release(repo="../../etc"), release(repo="acme/.."),
                release(repo="acme"), release(repo="acme/hello/v1"),
                release(asset="../hello"), release(asset=".."),
                release(asset="v1/hello"), release(tag=".."),
                release(tag="../../.."), release(rename="../x"),
                release(sha256="xyz"), release(asset="a.tar.gz")]:
        r = rt.call({"method": "deploy", "app_name": "t", "cmd": ["x"],
                     "github_release": bad})
        assert r["ok"] is False, bad
        assert r["error"].startswith("invalid deploy request: github_release"), r
    dep = rt.deploy(app_name="esc", cmd=["x"],
                    github_release=release(asset="escape"))
    d = rt.wait_status(dep, "failed")
    assert "outside the releases directory" in d["error_message"]


def test_release_needs_a_releases_dir(runtime):
    rt = runtime()
    r = rt.call({"method": "deploy", "app_name": "r", "cmd": ["x"],
                 "github_release": release()})
    assert r["ok"] is False
    assert "DD_RUNTIME_RELEASES_DIR" in r["error"]


# --- token, garbage ------------------------------------------------------------------

def test_token_is_required_when_set(runtime):
    rt = runtime({"EE_TOKEN": TOKEN})
    c = rt.conn()
    assert c.call({"method": "health"}) == {"ok": False,
                                            "error": "unauthenticated"}
    assert c.call({"method": "health", "token": "ab" * 31 + "ac"}) == {
        "ok": False, "error": "unauthenticated"}
    assert c.call({"method": "health", "token": TOKEN[:-1]})["error"] == \
        "unauthenticated"
    assert c.call({"method": "health", "token": 5})["error"] == \
        "unauthenticated"
    # Garbage is refused as JSON before any token check (as EasyEnclave).
    c.send(b"garbage\n")
    assert c.reply()["error"].startswith("invalid json: ")
    assert c.call({"method": "health", "token": TOKEN})["ok"] is True
    c.close()
    assert call(rt.path, {"method": "list"}, TOKEN)["ok"] is True
    assert call(rt.path, {"method": "list"})["error"] == "unauthenticated"


def test_garbage_lines_get_errors_and_the_connection_stays(runtime):
    rt = runtime()
    c = rt.conn()
    cases = [
        (b"garbage", "invalid json: "),
        (b"", "invalid json: "),
        (b"[1]", "request must be a JSON object"),
        (b"{}", "missing method"),
        (b'{"method":5}', "missing method"),
        (b'{"method":"bogus"}', "unknown method: bogus"),
        (b'{"method":"' + b"m" * 500 + b'"}', "unknown method: " + "m" * 64),
        (b'{"method":"health","method":"list"}', "invalid json: "),
        (b'{"method":"\\u0000"}', "invalid json: "),
        (b'{"method":"h\xff\xfe"}', "invalid json: "),
        (b"[" * 5000, "invalid json: "),
        (b'{"method":"logs","id":{"x":1}}', "missing id"),
    ]
    for line, want in cases:
        c.send(line + b"\n")
        raw = c.line()
        r = json.loads(raw)  # always well-formed JSON
        assert r["ok"] is False, line[:60]
        assert r["error"].startswith(want), (line[:60], r)
    # Pipelined requests come back in order.
    c.send(b'{"method":"health"}\n{"method":"list"}\n{"method":"nope"}\n')
    assert c.reply()["sealed"] is False
    assert c.reply()["deployments"] == []
    assert c.reply()["error"] == "unknown method: nope"
    c.close()


def test_random_lines_never_hurt(runtime):
    rt = runtime()
    c = rt.conn()
    rnd = random.Random(1234)
    for _ in range(200):
        n = rnd.randrange(0, 300)
        line = bytes(rnd.randrange(0, 256) for _ in range(n)).replace(b"\n", b" ")
        c.send(line + b"\n")
        r = json.loads(c.line())
        assert r["ok"] is False
    assert c.call({"method": "health"})["ok"] is True
    c.close()


def test_long_line_is_refused_then_closed(runtime):
    rt = runtime({"DD_RUNTIME_MAX_REQUEST": "4096"})
    c = rt.conn()
    c.send(b'{"method":"health"}\n' + b"x" * 10000)
    assert c.reply()["ok"] is True
    r = c.reply()
    assert r == {"ok": False, "error": "request line longer than 4096 bytes"}
    assert c.closed()
    c.close()
    # A last line without its newline is still answered.
    s = socket.socket(socket.AF_UNIX)
    s.connect(rt.path)
    s.sendall(b'{"method":"health"}')
    s.shutdown(socket.SHUT_WR)
    assert json.loads(s.makefile("rb").readline())["ok"] is True
    s.close()


def test_connection_cap(runtime):
    rt = runtime({"DD_RUNTIME_MAX_CONNECTIONS": "2"})
    a, b = rt.conn(), rt.conn()
    assert a.call({"method": "health"})["ok"] is True
    c = rt.conn()
    assert c.reply() == {"ok": False, "error": "busy: too many connections"}
    assert c.closed()
    assert b.call({"method": "health"})["ok"] is True
    for x in (a, b, c):
        x.close()


# --- attest ----------------------------------------------------------------------------

def test_attest_with_simulated_quotes(runtime):
    rt = runtime({"DD_DEV": "1", "DD_QUOTE_PROVIDER": "sim"})
    assert rt.call({"method": "health"})["attestation_type"] == "simulated"
    r = rt.call({"method": "attest", "nonce": "00112233"})
    assert r["ok"] is True, r
    assert r["quote_format"] == "tdx"
    assert r["report_data_len"] == 4
    assert r["report_data_b64"] == base64.b64encode(bytes.fromhex("00112233")).decode()
    quote = base64.b64decode(r["quote_b64"])
    assert quote[568:632] == bytes.fromhex("00112233") + bytes(60)
    rd = os.urandom(64)
    r = rt.call({"method": "attest",
                 "report_data_b64": base64.b64encode(rd).decode()})
    assert base64.b64decode(r["quote_b64"])[568:632] == rd
    r = rt.call({"method": "attest", "nonce": "not hex, not base64!"})
    assert r["ok"] is False and r["error"].startswith("invalid nonce base64")
    r = rt.call({"method": "attest",
                 "report_data_b64": base64.b64encode(bytes(65)).decode()})
    assert r["error"] == "TDX report data is 65 bytes; maximum is 64"


def test_attest_without_tdx_is_a_clean_error(runtime, tmpdir_short):
    rt = runtime({"DD_TSM_ROOT": os.path.join(tmpdir_short, "no-tsm")})
    r = rt.call({"method": "attest"})
    assert r["ok"] is False
    assert r["attestation_type"] == "tdx"
    assert r["error"]


def test_simulated_quotes_need_dev_mode(tmpdir_short):
    env = dict(os.environ, EE_SOCKET_PATH=os.path.join(tmpdir_short, "s"),
               DD_QUOTE_PROVIDER="sim")
    env.pop("DD_DEV", None)
    r = subprocess.run([DD_BIN, "runtime"], capture_output=True, text=True,
                       timeout=20, env=env)
    assert r.returncode == 1
    assert "DD_QUOTE_PROVIDER: sim needs DD_DEV=1" in r.stderr


# --- shutdown ----------------------------------------------------------------------------

@pytest.mark.parametrize("grace_ms", ["500", "3000"])
def test_sigterm_leaves_no_process_behind(runtime, grace_ms):
    rt = runtime({"DD_RUNTIME_STOP_GRACE_MS": grace_ms})
    pids = []
    for name, cmd in [
            ("loop", SHELL_LOOP),
            ("stubborn", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]),
            # A process group of its own, in the same session.
            ("jobs", ["sh", "-c", "/usr/bin/python3 -c 'import os, time; "
                      "os.setpgid(0, 0); time.sleep(1000)' & sleep 1000 & "
                      "wait"]),
            ("tty", ["sh", "-c", "sleep 1000"])]:
        spec = {"app_name": name, "cmd": cmd}
        if name == "tty":
            spec["tty"] = True
        dep = rt.deploy(**spec)
        pids.append(rt.wait_status(dep, "running")["pid"])
    wait_for(lambda: len(live_in_session(pids[2])) >= 3, what="jobs started")
    c = rt.conn()
    c.send(b'{"method":"attach","cmd":["sh"]}\n')
    assert c.reply()["attached"] is True
    c.send(b"echo $$\n")
    c.read_until(b"\n")
    exec_conn = rt.conn()
    exec_conn.send(b'{"method":"exec","cmd":["sleep","1000"]}\n')
    wait_for(lambda: len(children_of(rt.server.pid)) >= 6, what="children")
    before = children_of(rt.server.pid)
    sessions = set(pids) | set(before)
    t0 = time.monotonic()
    rt.server.send_signal(signal.SIGTERM)
    assert rt.server.proc.wait(20) == 0
    # The stubborn one needed SIGKILL after the grace period, which may
    # be longer than the service's own 2 s for draining.
    took = time.monotonic() - t0
    assert int(grace_ms) / 1000 <= took < int(grace_ms) / 1000 + 8
    for sid in sessions:
        assert live_in_session(sid) == [], sid
    assert children_of(rt.server.pid) == []
    assert not os.path.exists(rt.path)
    leftovers = [n for n in os.listdir(os.path.dirname(rt.path))
                 if n.startswith(".dd-runtime-")]
    assert leftovers == []
    assert c.closed() and exec_conn.closed()
    c.close()
    exec_conn.close()
