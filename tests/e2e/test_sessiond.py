"""`devopsdefender sessiond`: PTY sessions from recipes behind a unix
socket, driven from Python: typing into a shell, resizing, closing a whole
process group, descriptor isolation between sessions, the socket's mode
and peer check, transcripts sealed to device keys (opened here with an
independent implementation on `cryptography`), history across a restart,
and malformed requests."""
import base64
import json
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import unix_ndjson
from conftest import DD_BIN


# --- the device side: key and opener (spec 5.10, written independently) ----

def raw_pub(sk):
    return sk.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)


def open_line(sk, line):
    """The record inside a sealed line, or None if not for this key."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("v") != 2:
        return None
    pk = raw_pub(sk)
    for st in obj["rcpts"]:
        epk = bytes.fromhex(st["epk"])
        shared = sk.exchange(X25519PublicKey.from_public_bytes(epk))
        wrap = HKDF(hashes.SHA256(), 32, None,
                    b"dd-sessiond-e2e-v2" + epk + pk).derive(shared)
        try:
            cek = ChaCha20Poly1305(wrap).decrypt(
                bytes.fromhex(st["n"]), base64.b64decode(st["wk"]), None)
        except Exception:
            continue
        body = ChaCha20Poly1305(cek).decrypt(
            bytes.fromhex(obj["bn"]), base64.b64decode(obj["body"]), None)
        return json.loads(body)
    return None


# --- a small client ----------------------------------------------------------

class Conn(unix_ndjson.Conn):
    """The shared client, with read_until asserting what it waited for."""

    def __init__(self, path, timeout=10.0):
        super().__init__(path, timeout=timeout)

    def read_until(self, needle, timeout=10.0):
        buf = super().read_until(needle, timeout)
        assert needle in buf, f"{needle!r} not in {buf[-500:]!r}"
        return buf

    def eof(self, timeout=10.0):
        return self.closed(timeout)


class Sessiond:
    def __init__(self, server, path, hist):
        self.server = server
        self.path = path
        self.hist = hist

    def conn(self):
        return Conn(self.path)

    def call(self, obj):
        c = self.conn()
        try:
            return c.call(obj)
        finally:
            c.close()

    def create(self, **kw):
        r = self.call(dict({"method": "shell.create_session"}, **kw))
        assert r["ok"] is True, r
        return r["id"]

    def attach(self, sid, **kw):
        c = self.conn()
        ack = c.call(dict({"method": "shell.attach_session", "id": sid}, **kw))
        assert ack["ok"] is True, ack
        return c, ack

    def shell_pid(self, c):
        c.send(b"echo PI''D=$$.\n")
        deadline = time.monotonic() + 10
        while re.search(rb"PID=(\d+)\.", c.buf) is None:
            assert time.monotonic() < deadline, c.buf
            unix_ndjson.Conn.read_until(c, b"\x00", 0.1)
        return int(re.search(rb"PID=(\d+)\.", c.buf).group(1))


@pytest.fixture
def tmpdir_short():
    d = tempfile.mkdtemp(prefix="ddsd-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sessiond(start, tmpdir_short):
    def _sessiond(env=None):
        path = os.path.join(tmpdir_short, "run", "sessiond.sock")
        hist = os.path.join(tmpdir_short, "hist")
        full = {"DD_SESSIOND_SOCKET": path, "DD_SESSIOND_DIR": hist}
        full.update(env or {})
        return Sessiond(start([DD_BIN, "sessiond"], full), path, hist)
    return _sessiond


def device():
    sk = X25519PrivateKey.generate()
    return sk, raw_pub(sk).hex()


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def session_members(sid):
    """Live processes whose session or process group is sid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] in ("Z", "X"):
            continue
        if int(fields[2]) == sid or int(fields[3]) == sid:
            out.append(int(d))
    return out


# --- the socket --------------------------------------------------------------

def test_socket_is_0600_and_listed_methods_work(sessiond):
    sd = sessiond()
    st = os.lstat(sd.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(sd.hist).st_mode) == 0o700
    r = sd.call({"method": "shell.list_recipes"})
    assert r["ok"] is True
    assert [x["id"] for x in r["recipes"]] == ["shell"]
    assert r["recipes"][0]["command"] == "/bin/sh"
    assert sd.call({"method": "shell.list_sessions"}) == {"ok": True,
                                                          "sessions": []}
    st = sd.call({"method": "status"})
    assert st["ok"] is True and st["recipients"] == 0


def test_another_uid_is_refused(sessiond):
    sd = sessiond({"DD_SESSIOND_PEER_UID": str(os.geteuid() + 1)})
    c = sd.conn()
    r = json.loads(c.line())
    assert r == {"ok": False, "error": "forbidden",
                 "detail": "peer runs as another user"}
    assert c.eof()
    assert "refused a connection from uid" in sd.server.output()


# --- sessions ----------------------------------------------------------------

def test_echo_hi(sessiond):
    sd = sessiond()
    sid = sd.create()
    c, ack = sd.attach(sid)
    assert ack["input"] is True and ack["tail"] is True
    c.send(b"echo hi\n")
    # The terminal echoes the line ("echo hi\r\n"), then the shell prints.
    deadline = time.monotonic() + 10
    while c.buf.replace(b"echo hi\r\n", b"").find(b"hi\r\n") < 0:
        assert time.monotonic() < deadline, c.buf
        c.read_until(b"hi\r\n", 1)
        c.sock.settimeout(0.2)
        try:
            c.buf += c.sock.recv(65536)
        except socket.timeout:
            pass
    lst = sd.call({"method": "shell.list_sessions"})["sessions"]
    assert [s["id"] for s in lst] == [sid]
    assert lst[0]["status"] == "running"
    assert lst[0]["history"] == "disabled-no-device"
    assert lst[0]["name"] == "shell-" + sid[:8]
    c.close()
    # A detach leaves the session running.
    c, _ = sd.attach(sid, tail=False)
    c.send(b"echo $DD_SESSION_ID $TERM\n")
    c.read_until(f"{sid} xterm-256color\r\n".encode())
    c.close()


def test_input_sent_with_the_attach_line_is_not_lost(sessiond):
    sd = sessiond()
    sid = sd.create()
    c = sd.conn()
    c.send(json.dumps({"method": "shell.attach_session", "id": sid,
                       "tail": False}).encode() + b"\necho sa''me\n")
    assert json.loads(c.line())["ok"] is True
    c.read_until(b"same\r\n")
    c.close()


def test_resize_shows_in_stty_and_signals_winch(sessiond):
    sd = sessiond()
    sid = sd.create(cols=132, rows=43)
    c, _ = sd.attach(sid)
    c.send(b"stty size\n")
    c.read_until(b"43 132\r\n")
    c.send(b"trap 'echo GOT''WINCH' WINCH\n")
    time.sleep(0.3)
    r = sd.call({"method": "shell.resize_session", "id": sid, "cols": 100,
                 "rows": 30})
    assert r == {"ok": True}
    c.send(b"\n")  # dash runs traps once its read returns
    c.read_until(b"GOTWINCH")
    c.send(b"stty size\n")
    c.read_until(b"30 100\r\n")
    for bad in ({"cols": 0}, {"rows": 65536}, {"cols": "80"}):
        r = sd.call(dict({"method": "shell.resize_session", "id": sid}, **bad))
        assert r["ok"] is False and r["error"] == "bad_request", r
    c.close()


def test_close_ends_the_whole_process_group(sessiond):
    sd = sessiond()
    sid = sd.create()
    c, _ = sd.attach(sid)
    pid = sd.shell_pid(c)
    # The leader leads its own session and process group.
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[2]) == pid and int(fields[3]) == pid
    # A child that ignores HUP and TERM, and a plain one in the background.
    c.send(b"sh -c 'trap \"\" HUP TERM; while :; do sleep 1; done' &\n"
           b"sleep 1000 &\necho START''ED\n")
    c.read_until(b"STARTED\r\n")
    time.sleep(0.3)
    assert len(session_members(pid)) >= 3
    t0 = time.monotonic()
    assert sd.call({"method": "shell.close_session", "id": sid}) == {
        "ok": True}
    # Off the list at once.
    assert sd.call({"method": "shell.list_sessions"})["sessions"] == []
    deadline = time.monotonic() + 10
    while session_members(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(pid) == []
    assert gone(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(-pid, 0)
    # The stubborn one needed SIGKILL: HUP, 250 ms, TERM, 1500 ms, KILL.
    assert time.monotonic() - t0 >= 1.5
    assert c.eof()
    r = sd.call({"method": "shell.close_session", "id": sid})
    assert r["ok"] is False and r["error"] == "not_found"


def test_natural_exit_keeps_the_session_listed(sessiond):
    sd = sessiond()
    sid = sd.create()
    c, _ = sd.attach(sid)
    c.send(b"exit 3\n")
    assert c.eof()  # the stream ends with the session's output
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        s = sd.call({"method": "shell.list_sessions"})["sessions"][0]
        if s["status"] == "exited":
            break
        time.sleep(0.05)
    assert s["status"] == "exited" and s["exit_code"] == 3
    # Attaching to a finished session: acknowledged, then EOF at once.
    c, _ = sd.attach(sid)
    assert c.eof()
    assert sd.call({"method": "shell.close_session", "id": sid})["ok"]


def test_sessions_cannot_reach_each_others_terminal(sessiond):
    sd = sessiond()
    a, b = sd.create(), sd.create()
    ca, _ = sd.attach(a)
    cb, _ = sd.attach(b)
    pa, pb = sd.shell_pid(ca), sd.shell_pid(cb)
    ca.send(b"tty\n")
    buf = ca.read_until(b"\r\n/dev/pts/", 10)
    ca.read_until(b"\r\n", 10)
    tty_a = ca.buf[ca.buf.rindex(b"/dev/pts/"):].split(b"\r\n")[0].decode()
    for pid, own in ((pb, a), (pa, b)):
        links = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                links.append((int(fd), os.readlink(f"/proc/{pid}/fd/{fd}")))
            except OSError:
                pass
        # Nothing but its own terminal: no master, no other slave.
        assert not any("ptmx" in l for _, l in links), links
        if pid == pb:
            assert not any(l == tty_a for _, l in links), (tty_a, links)
        assert all(l.startswith("/dev/pts/") or l.startswith("/dev/tty")
                   for _, l in links), links
    del buf
    ca.close()
    cb.close()


def test_watchers_see_output_and_one_types(sessiond):
    sd = sessiond()
    sid = sd.create()
    typist, ack1 = sd.attach(sid)
    watcher, ack2 = sd.attach(sid)
    assert ack1["input"] is True and ack2["input"] is False
    watcher.send(b"echo FROM''WATCHER\n")
    typist.send(b"echo FROM''TYPIST\n")
    typist.read_until(b"FROMTYPIST\r\n")
    watcher.read_until(b"FROMTYPIST\r\n")
    assert b"FROMWATCHER" not in typist.buf
    # The typist leaves: the role is free for the next attach.
    typist.close()
    time.sleep(0.2)
    c, ack3 = sd.attach(sid, tail=False)
    assert ack3["input"] is True
    c.close()
    watcher.close()


def test_scrollback_is_bounded(sessiond):
    sd = sessiond({"DD_SESSIOND_SCROLLBACK": "4096"})
    sid = sd.create()
    c, _ = sd.attach(sid)
    c.send(b"i=0; while [ $i -lt 1000 ]; do echo line$i; i=$((i+1)); done; "
           b"echo DO''NE\n")
    c.read_until(b"DONE\r\n")
    c.close()
    time.sleep(0.2)
    c, _ = sd.attach(sid)
    c.read_until(b"DONE", 5)
    time.sleep(0.3)
    c.sock.settimeout(0.5)
    try:
        while True:
            d = c.sock.recv(65536)
            if not d:
                break
            c.buf += d
    except socket.timeout:
        pass
    tail = c.buf  # the ack line was consumed by attach
    assert len(tail) <= 4096 + 64, len(tail)  # ring plus a prompt
    assert b"line999\r\n" in tail and b"line0\r" not in tail
    c.close()


def test_max_sessions(sessiond):
    sd = sessiond({"DD_SESSIOND_MAX_SESSIONS": "2"})
    sd.create()
    sd.create()
    r = sd.call({"method": "shell.create_session"})
    assert r["ok"] is False and r["error"] == "busy"


def test_recipes_file(sessiond, tmpdir_short):
    path = os.path.join(tmpdir_short, "recipes.json")
    with open(path, "w") as f:
        json.dump({"recipes": [
            {"id": "shell", "argv": ["/bin/sh"]},
            {"id": "greeter", "title": "Greeter", "argv":
             ["/bin/sh", "-c", "echo hello $WHO from $(pwd); sleep 30"],
             "env": {"WHO": "recipe"}, "cwd": "/tmp"}]}, f)
    sd = sessiond({"DD_SESSIOND_RECIPES": path})
    ids = [r["id"] for r in sd.call({"method": "shell.list_recipes"})["recipes"]]
    assert ids == ["shell", "greeter"]
    sid = sd.create(recipe_id="greeter")
    c, _ = sd.attach(sid)
    c.read_until(b"hello recipe from /tmp")
    c.close()
    r = sd.call({"method": "shell.create_session", "recipe_id": "nope"})
    assert r["ok"] is False and r["error"] == "unknown_recipe"
    r = sd.call({"method": "shell.create_session", "command": "/bin/sh"})
    assert r["ok"] is False and r["error"] == "not_allowed"
    r = sd.call({"method": "shell.create_session", "cwd": "/does/not/exist"})
    assert r["ok"] is False and r["error"] == "spawn_failed"


# --- sealed history ----------------------------------------------------------

def replay_records(sd, sid, max_bytes=None):
    recs, cursor = [], 0
    while True:
        req = {"method": "shell.replay_session", "id": sid, "cursor": cursor}
        if max_bytes:
            req["max_bytes"] = max_bytes
        r = sd.call(req)
        assert r["ok"] is True and r["version"] == 2, r
        recs += r["records"]
        cursor = r.get("next", 0)
        if not cursor:
            return recs


def transcript(sk, lines):
    out, metas = b"", []
    for line in lines:
        rec = open_line(sk, line)
        if rec is None:
            continue
        data = base64.b64decode(rec["data_b64"])
        if rec["kind"] == "meta":
            metas.append(json.loads(data))
        else:
            out += data
    return out, metas


def test_history_is_sealed_to_the_device_and_survives_restart(sessiond):
    sk, pk = device()
    other, _ = device()
    sd = sessiond()
    assert sd.call({"method": "recipients.set", "pubkeys": [pk]}) == {
        "ok": True, "recipients": 1}
    sid = sd.create()
    c, _ = sd.attach(sid)
    c.send(b"echo SEC''RET-MARK\n")
    c.read_until(b"SECRET-MARK\r\n")
    assert sd.call({"method": "shell.close_session", "id": sid})["ok"]
    assert c.eof()
    lines = replay_records(sd, sid)
    assert lines
    text, metas = transcript(sk, lines)
    assert b"SECRET-MARK\r\n" in text
    assert [m["status"] for m in metas] == ["running", "exited"]
    assert metas[0]["id"] == sid and metas[0]["history"] == "e2e"
    assert all(open_line(other, l) is None for l in lines)
    # Nothing readable on disk.
    for name in os.listdir(sd.hist):
        with open(os.path.join(sd.hist, name), "rb") as f:
            assert b"SECRET-MARK" not in f.read()
        assert stat.S_IMODE(os.lstat(os.path.join(sd.hist, name)).st_mode) \
            == 0o600
    # Small pages give the same lines.
    assert replay_records(sd, sid, max_bytes=1024) == lines

    assert sd.server.stop() == 0
    sd2 = sessiond()
    hist = sd2.call({"method": "shell.list_history"})["history"]
    assert [h["id"] for h in hist] == [sid]
    assert replay_records(sd2, sid) == lines
    # The recipient set was kept: history goes on before any re-push.
    assert sd2.call({"method": "status"})["recipients"] == 1
    sid2 = sd2.create()
    c, _ = sd2.attach(sid2)
    c.send(b"echo AF''TER\n")
    c.read_until(b"AFTER\r\n")
    c.close()
    time.sleep(0.2)
    text2, _ = transcript(sk, replay_records(sd2, sid2))
    assert b"AFTER\r\n" in text2


def test_recipient_changes_apply_to_later_records(sessiond):
    sk1, pk1 = device()
    sk2, pk2 = device()
    sd = sessiond()
    sid = sd.create()  # no recipients yet: nothing written
    r = sd.call({"method": "shell.replay_session", "id": sid})
    assert r["ok"] is False and r["error"] == "not_found"
    c, _ = sd.attach(sid)
    assert sd.call({"method": "recipients.set", "pubkeys": [pk1]})["ok"]
    c.send(b"echo ON''E\n")
    c.read_until(b"ONE\r\n")
    # No pause: output still batched is sealed before the set changes.
    assert sd.call({"method": "recipients.set", "pubkeys": [pk2]})["ok"]
    c.send(b"echo TW''O\n")
    c.read_until(b"TWO\r\n")
    time.sleep(0.2)
    lines = replay_records(sd, sid)
    t1, _ = transcript(sk1, lines)
    t2, _ = transcript(sk2, lines)
    assert b"ONE\r\n" in t1 and b"TWO" not in t1
    assert b"TWO\r\n" in t2 and b"ONE\r\n" not in t2
    for bad in (["00" * 32], ["zz"], "x", [pk1] * 65):
        r = sd.call({"method": "recipients.set", "pubkeys": bad})
        assert r["ok"] is False and r["error"] == "bad_request", r
    c.close()


# --- hostile requests ----------------------------------------------------------

def test_malformed_and_oversized_requests(sessiond):
    sd = sessiond({"DD_SESSIOND_MAX_REQUEST": "4096"})
    c = sd.conn()
    cases = [
        (b"not json", "bad_request"),
        (b"[1]", "bad_request"),
        (b"{}", "bad_request"),
        (b'{"method":"deploy"}', "unknown_method"),
        (b'{"method":"shell.attach_session","id":"../../etc/passwd"}',
         "bad_request"),
        (b'{"method":"shell.replay_session","id":"'
         b'11111111-2222-4333-8444-555555555555"}', "not_found"),
        (b'{"method":"shell.attach_session","id":"'
         b'11111111-2222-4333-8444-555555555555"}', "not_found"),
        (b'\xff\xfe{"method":"status"}', "bad_request"),
    ]
    for line, code in cases:
        c.send(line + b"\n")
        r = json.loads(c.line())
        assert r["ok"] is False and r["error"] == code, (line, r)
    # Still in request mode after all that.
    assert c.call({"method": "status"})["ok"] is True
    c.send(b"{" + b" " * 10000 + b"}\n")
    r = json.loads(c.line())
    assert r["ok"] is False and r["error"] == "too_large"
    assert c.eof()
    # A client that goes away in the middle of a line, and one that sends
    # only a partial line, change nothing.
    c = sd.conn()
    c.send(b'{"method":"sta')
    c.close()
    assert sd.call({"method": "status"})["ok"] is True
