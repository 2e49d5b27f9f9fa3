"""`GET /logs/{app}?follow=1` against the REAL local runtime: a workload's
log arrives as a live NDJSON stream, in order, without repeats; the
stream ends with a reason when the workload goes away; a bad follow
value and an unknown app are refused before anything streams; the owner
rule applies as for the plain reply."""
import http.client
import json
import time

from test_agent_runtime import (OWNER, agent, agent_env, deploy,  # noqa: F401
                                oidc, owner_call, runtime, sockdir,
                                wait_for)
from conftest import DD_BIN

TICK = ["/bin/sh", "-c",
        "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"]


def open_follow(agent, token, app, query="follow=1"):
    """token: a fresh OIDC token (each jti is accepted once)."""
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=15)
    conn.request("GET", f"/logs/{app}?{query}",
                 headers={"Authorization": f"Bearer {token}"})
    return conn, conn.getresponse()


def read_objects(resp, want, timeout=15.0):
    """Reads NDJSON objects until want(objs) is true or the stream ends."""
    objs, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = resp.readline()
        if not line:
            break
        objs.append(json.loads(line))
        if want(objs):
            break
    return objs


def test_follow_streams_new_lines_in_order(agent, oidc):
    deploy(agent, oidc, app_name="tick", cmd=TICK)
    token = oidc.token("acme", 4242)
    wait_for(lambda: owner_call(agent, oidc, "GET", "/logs/tick").status == 200,
             what="tick deployed")
    conn, resp = open_follow(agent, token, "tick")
    try:
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "application/x-ndjson"
        assert resp.getheader("Transfer-Encoding") == "chunked"
        # Lines keep arriving over several polls (one a second).
        objs = read_objects(resp, lambda o: sum("line" in x for x in o) >= 40)
    finally:
        conn.close()
    got = [o["line"] for o in objs if "line" in o]
    assert len(got) >= 40, objs
    first = int(got[0].split()[1])
    # Consecutive, no repeats, no holes: the overlap found each new line.
    assert got == [f"tick {first + i}" for i in range(len(got))]
    assert not any("gap" in o or "end" in o for o in objs)


def test_follow_ends_when_the_workload_goes_away(start, ita_env, oidc,
                                                 runtime):
    a = start([DD_BIN, "agent"], agent_env(ita_env, oidc, runtime.sock))
    deploy(a, oidc, app_name="tick", cmd=TICK)
    token = oidc.token("acme", 4242)
    wait_for(lambda: owner_call(a, oidc, "GET", "/logs/tick").status == 200,
             what="tick deployed")
    conn, resp = open_follow(a, token, "tick")
    try:
        assert resp.status == 200
        read_objects(resp, lambda o: len(o) >= 3)
        # The runtime stops: the stream says so and ends cleanly.
        runtime.proc.terminate()
        runtime.proc.wait(10)
        objs = read_objects(resp, lambda o: "end" in o[-1])
        assert objs and "end" in objs[-1], objs
        assert resp.readline() == b""   # the terminating chunk came
    finally:
        conn.close()


def test_follow_refusals(agent, oidc):
    conn, resp = open_follow(agent, oidc.token("acme", 4242), "nope")
    assert resp.status == 404 and json.loads(resp.read())["code"] == "not_found"
    conn.close()
    conn, resp = open_follow(agent, oidc.token("acme", 4242), "nope",
                             "follow=yes")
    assert resp.status == 400
    assert "follow" in json.loads(resp.read())["message"]
    conn.close()
    # Another owner's token: refused before any stream starts.
    conn, resp = open_follow(agent, oidc.token("mallory", 666), "tick")
    assert resp.status in (401, 403)
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=15)
    conn.request("GET", "/logs/tick?follow=1")
    assert conn.getresponse().status == 401
    conn.close()


def test_a_vanished_follower_is_released(agent, oidc):
    """Clients that hang up mid-stream leave nothing behind: more of them
    than the follower cap come and go, and a new follower still gets in."""
    deploy(agent, oidc, app_name="tick", cmd=TICK)
    wait_for(lambda: owner_call(agent, oidc, "GET", "/logs/tick").status == 200,
             what="tick deployed")
    for _ in range(40):   # DD_LOG_FOLLOW_MAX is 32
        conn, resp = open_follow(agent, oidc.token("acme", 4242), "tick")
        assert resp.status == 200
        conn.close()
    time.sleep(0.5)
    conn, resp = open_follow(agent, oidc.token("acme", 4242), "tick")
    try:
        assert resp.status == 200
        assert read_objects(resp, lambda o: any("line" in x for x in o))
    finally:
        conn.close()
