"""Fresh, bound registration: a real agent registers with a real CP (the
local ITA, simulated quotes); forged, stale, replayed and unbound evidence
is refused with 401 and a JSON code."""
import hashlib
import json

import pytest

from conftest import DD_BIN, closed_port, request, wait_for


@pytest.fixture
def cp(start, ita_env):
    return start([DD_BIN, "cp"], ita_env)


def start_agent(start, ita_env, cp, **extra):
    env = dict(ita_env, DD_API_PORT="0", DD_CP_URL=f"http://127.0.0.1:{cp.port}",
               DD_REGISTER_BACKOFF_MS="50")
    env.update(extra)
    return start([DD_BIN, "agent"], env)


def nonce(cp):
    r = request(cp.port, "GET", "/register/nonce")
    assert r.status == 200, r.body
    n = r.json()
    assert len(n["nonce"]) == 64 and n["expires_in"] == 120
    return n["nonce"]


def register(cp, body):
    return request(cp.port, "POST", "/register",
                   {"Content-Type": "application/json"},
                   json.dumps(body).encode())


def test_agent_registers_and_its_id_follows_its_key(start, ita_env, cp):
    agent = start_agent(start, ita_env, cp)
    h = wait_for(lambda: (lambda h: h if h["agent_id"] else None)(
        request(agent.port, "GET", "/health").json()), what="registration")
    pub = bytes.fromhex(h["noise"]["pubkey_hex"])
    want = "dd-dev-agent-" + hashlib.sha256(pub).hexdigest()[:16]
    assert h["agent_id"] == want
    assert h["ita_token"]           # its own token, refreshed on a timer
    assert "registered dd-dev-agent-" in cp.output()
    # The agent and the CP's own entry (spec 3.2 counts it).
    wait_for(lambda: request(cp.port, "GET", "/health").json()["agent_count"] == 2,
             what="the agent counted")
    # The collector scrapes the agent's /health, verifies its token, and
    # the agent turns healthy (the control-plane entry always is).
    wait_for(lambda: request(cp.port, "GET", "/health").json()["healthy_count"] == 2,
             timeout=20, what="the collector to find the agent healthy")


def test_refusals(start, ita_env, cp):
    agent = start_agent(start, ita_env, cp)
    h = wait_for(lambda: (lambda h: h if h["ita_token"] else None)(
        request(agent.port, "GET", "/health").json()), what="a token")
    pub = h["noise"]["pubkey_hex"]
    # A genuine token scraped from a public /health binds no CP nonce.
    body = {"vm_name": "thief", "ita_token": h["ita_token"], "nonce": nonce(cp),
            "noise_pubkey": pub, "url": "http://127.0.0.1:1"}
    r = register(cp, body)
    assert r.status == 401 and r.json()["code"] == "binding_mismatch", r.body
    # The nonce was burnt by that attempt: presenting it again is stale.
    r = register(cp, body)
    assert r.status == 401 and r.json()["code"] == "stale_nonce"
    # One we never issued.
    r = register(cp, dict(body, nonce="ab" * 32))
    assert r.status == 401 and r.json()["code"] == "stale_nonce"
    # A forged token.
    r = register(cp, dict(body, nonce=nonce(cp), ita_token="e30.e30.sig"))
    assert r.status == 401 and r.json()["code"] == "bad_token"
    # The CP's own token, also genuine, also unbound.
    cp_token = request(cp.port, "GET", "/health?verbose=1").json()["cp_ita"]
    r = register(cp, dict(body, nonce=nonce(cp), ita_token=cp_token))
    assert r.status == 401 and r.json()["code"] == "binding_mismatch"
    # Malformed bodies never touch a nonce.
    for bad in ({}, {"vm_name": "x"}, dict(body, noise_pubkey="00" * 32),
                dict(body, noise_pubkey="zz"), dict(body, nonce="12"),
                dict(body, extra_ingress=[{"hostname_label": "a", "port": 0}]),
                dict(body, vm_name=""), dict(body, url="ftp://x"),
                dict(body, url="http://a b")):
        r = register(cp, bad)
        assert r.status == 400, bad
    r = request(cp.port, "POST", "/register", {}, b"[1,2")
    assert r.status == 400


def test_unpinned_evidence_is_refused_and_fatal(start, ita_env, cp):
    """A CP pinned to its own image refuses an agent running another."""
    other = "ab" * 48
    pinned_cp = start([DD_BIN, "cp"], dict(
        ita_env, DD_EXPECTED_MRTD=cp_mrtd(cp)))
    agent = start_agent(start, ita_env, pinned_cp, DD_SIM_MRTD=other,
                        DD_EE_WAIT_SECS="0")
    rc = agent.proc.wait(30)
    assert rc == 1
    out = agent.output()
    assert "registration refused" in out and "not_pinned" in out


def cp_mrtd(cp):
    return request(cp.port, "GET", "/health").json()["attestation"]["mrtd"]


def test_forgotten_agents_register_again(start, ita_env):
    port = closed_port()
    first = start([DD_BIN, "cp"], dict(ita_env, DD_PORT=str(port)))
    agent = start_agent(start, ita_env, first, DD_REGISTER_CHECK_SECS="1")
    h = wait_for(lambda: (lambda h: h if h["agent_id"] else None)(
        request(agent.port, "GET", "/health").json()), what="registration")
    agent_id = h["agent_id"]
    assert request(port, "GET", f"/register/{agent_id}").status == 200
    assert request(port, "GET", "/register/dd-dev-agent-unknown").status == 404
    assert first.stop() == 0
    # A replacement CP that does not know the agent (a fresh store).
    second = start([DD_BIN, "cp"], dict(ita_env, DD_PORT=str(port)))
    wait_for(lambda: request(port, "GET", f"/register/{agent_id}").status == 200,
             timeout=30, what="the agent to register with the new CP")
    assert "registering again" in agent.output()
    assert f"registered {agent_id}" in second.output()


def test_the_fleet_survives_a_cp_restart(start, ita_env, tmp_path):
    port = closed_port()
    env = dict(ita_env, DD_PORT=str(port), DD_STORE_PATH=str(tmp_path / "cp.db"))
    first = start([DD_BIN, "cp"], env)
    agent = start_agent(start, ita_env, first, DD_REGISTER_CHECK_SECS="3600")
    h = wait_for(lambda: (lambda h: h if h["agent_id"] else None)(
        request(agent.port, "GET", "/health").json()), what="registration")
    assert first.stop() == 0
    assert oct((tmp_path / "cp.db").stat().st_mode & 0o777) == "0o600"
    second = start([DD_BIN, "cp"], env)
    # Known at once: nothing was lost, nobody had to register again.
    assert request(port, "GET", f"/register/{h['agent_id']}").status == 200
    assert "registered" not in second.output().replace("registered with", "")


def test_exposed_ports_reach_the_cp_with_fresh_evidence(start, ita_env, tmp_path):
    from fake_ee import FakeEE
    from fake_oidc import FakeOIDC
    oidc = FakeOIDC().start()
    ee = FakeEE(str(tmp_path / "ee.sock")).start()
    try:
        cp = start([DD_BIN, "cp"], dict(ita_env, DD_OWNER="acme",
                                        DD_OWNER_ID="4242", DD_OWNER_KIND="org"))
        agent = start_agent(start, ita_env, cp, DD_OWNER="acme",
                            DD_OWNER_ID="4242", DD_OWNER_KIND="org",
                            EE_SOCKET_PATH=ee.path, **oidc.env())
        wait_for(lambda: request(agent.port, "GET", "/health").json()["agent_id"],
                 what="registration")
        spec = {"app_name": "web", "cmd": ["web"],
                "expose": {"hostname_label": "web", "port": 9000}}
        r = request(agent.port, "POST", "/deploy",
                    {"Content-Type": "application/json",
                     "Authorization": f"Bearer {oidc.token('acme', 4242)}"},
                    json.dumps(spec).encode())
        assert r.status == 200, r.body
        try:
            wait_for(lambda: "ingress of dd-dev-agent-" in agent.output(),
                     what="the new ingress to reach the CP")
        except AssertionError:
            print([l for l in agent.output().splitlines() if "level=info" not in l
                   or "ingress" in l or "regist" in l][-20:])
            print([l for l in cp.output().splitlines() if "ingress" in l][-5:])
            raise
        # Someone else's claims on that agent's ingress: refused.
        h = request(agent.port, "GET", "/health").json()
        body = {"agent_id": h["agent_id"], "ita_token": h["ita_token"],
                "nonce": nonce(cp), "noise_pubkey": h["noise"]["pubkey_hex"],
                "extra_ingress": [{"hostname_label": "evil", "port": 1}]}
        r = request(cp.port, "POST", "/ingress/replace",
                    {"Content-Type": "application/json"}, json.dumps(body).encode())
        assert r.status == 401 and r.json()["code"] == "binding_mismatch"
        r = request(cp.port, "POST", "/ingress/replace",
                    {"Content-Type": "application/json"},
                    json.dumps(dict(body, agent_id="")).encode())
        assert r.status == 400
    finally:
        ee.stop()
        oidc.stop()
