"""The agent's cloudflared (Cloudflare ingress): when the CP's /register
answer carries a tunnel token, the agent runs its connector with the token
in TUNNEL_TOKEN (never argv), restarts it with back-off when it exits, and
/health shows "running" or the outage. Against a scripted CP (fake_cp.py)
and a connector script written per test."""
import json
import os
import stat
import tempfile
import time

import pytest

from conftest import DD_BIN, request, wait_for
from fake_cp import FakeCP

TOKEN = "eyJhIjoiYWNjdCIsInQiOiJ0dW4iLCJzIjoic2VjcmV0In0="


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="dd-agent-cfd-") as d:
        yield d


def connector(tmp, body):
    path = os.path.join(tmp, "cloudflared")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, stat.S_IRWXU)
    return path


def agent_with(start, ita_env, tmp, body, reply_token=TOKEN):
    cp = FakeCP([(200, {}, {"agent_id": "dd-dev-agent-cfd0000000000001",
                            "hostname": "dd-dev-agent-cfd.example.com",
                            "tunnel_token": reply_token})]).start()
    env = dict(ita_env, DD_CP_URL=cp.url,
               DD_CLOUDFLARED_PATH=connector(tmp, body),
               DD_CLOUDFLARED_BACKOFF_MS="100")
    a = start([DD_BIN, "agent"], env)
    return cp, a


def health(a):
    return request(a.port, "GET", "/health").json()


def test_connector_runs_with_the_token_in_its_environment(start, ita_env,
                                                          tmp):
    pidfile = os.path.join(tmp, "pid")
    cp, a = agent_with(start, ita_env, tmp,
                       f"echo $$ > {pidfile}.t; mv {pidfile}.t {pidfile}\n"
                       "while :; do sleep 1; done")
    try:
        wait_for(lambda: os.path.exists(pidfile), what="the connector")
        pid = int(open(pidfile).read())
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        # /bin/sh runs the script: argv is sh, the script, then ours.
        assert cmdline[2:6] == [b"tunnel", b"--no-autoupdate", b"--metrics=",
                                b"run"]
        assert not any(TOKEN.encode() in c for c in cmdline)
        assert b"TUNNEL_TOKEN=" + TOKEN.encode() in environ
        assert not any(e.startswith(b"DD_") for e in environ)
        h = wait_for(lambda: (lambda h: h if h.get("cloudflared", {})
                              .get("state") == "running" else None)(
                                  health(a)), what="running in /health")
        assert h["cloudflared"]["starts"] == 1
        # The token never shows in /health.
        assert TOKEN not in json.dumps(h)
    finally:
        cp.stop()


def test_exits_are_restarted_and_the_outage_shows(start, ita_env, tmp):
    cp, a = agent_with(start, ita_env, tmp, "echo crash >&2; exit 3")
    try:
        h = wait_for(lambda: (lambda h: h if h.get("cloudflared", {})
                              .get("exits", 0) >= 3 else None)(health(a)),
                     what="three exits")
        c = h["cloudflared"]
        assert c["starts"] >= 3 and c["last_status"] == 3
        assert a.proc.poll() is None  # an agent outlives its connector
        assert "cloudflared: crash" in a.output()
        down = wait_for(lambda: (lambda h: h if h["cloudflared"]["state"]
                                 == "down" else None)(health(a)),
                        what="an outage in /health")
        assert down["cloudflared"]["state"] == "down"
    finally:
        cp.stop()


def test_direct_ingress_runs_no_connector(start, ita_env, tmp):
    cp, a = agent_with(start, ita_env, tmp, "exit 0", reply_token=None)
    try:
        wait_for(lambda: cp.count("POST", "/register") >= 1,
                 what="registration")
        time.sleep(0.5)
        assert "cloudflared" not in health(a)
    finally:
        cp.stop()
