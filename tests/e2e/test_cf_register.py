"""Agent registration through Cloudflare (issue 8 part 2): a real CP
configured for the fake Cloudflare API (fake_cf.py) and a real agent
running the fake cloudflared. /register creates the agent's tunnel (its
ingress in the spec's order, ports from the CP's configuration), upserts
its CNAMEs and hands the connector token to the agent, which runs its
connector with it; /ingress/replace (a deployed `expose`, then signed
calls) adds and removes extras and their CNAMEs, only for the agent that
proves it is that agent; a Cloudflare outage at /register answers a clear
502 and records nothing.

Evidence for the signed calls is minted by the fake ITA (intel mode,
simulated quotes) over the registration binding, as the agent itself
does: SHA-512("devopsdefender/register/v1" || nonce || Noise key)."""
import hashlib
import json
import os

import pytest

from conftest import DD_BIN, request, wait_for
from fake_cf import FakeCF
from fake_ee import FakeEE
from fake_ita import FakeITA
from fake_oidc import FakeOIDC
from test_auth import mint_session, session_claims
from tsm_standin import quote_for

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = "pr-9"
DOMAIN = "example.com"          # the fake's zone
AGENT_PORT, API_PORT = 18080, 18081   # not the defaults: from configuration
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def cf():
    fake = FakeCF(token="tok-register-e2e-6b86b273ff34fce19d6b804eff5a3f57")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def ita():
    f = FakeITA(api_key="cf-register-e2e-key",
                issuer="https://ita.cf-register.test").start()
    yield f
    f.stop()


@pytest.fixture
def oidc():
    o = FakeOIDC().start()
    yield o
    o.stop()


def base_env(cf, ita, oidc, tmp_path):
    return {"DD_DEV": "1", "DD_ENV": ENV, "DD_ITA_MODE": "intel",
            "DD_QUOTE_PROVIDER": "sim", "DD_ITA_BASE_URL": ita.url,
            "DD_ITA_JWKS_URL": ita.certs_url, "DD_ITA_ISSUER": ita.issuer,
            "DD_ITA_API_KEY": ita.api_key, **oidc.env(),
            "DD_CLOUDFLARED_PATH": os.path.join(HERE, "fake_cloudflared.py"),
            "DD_CLOUDFLARED_BACKOFF_MS": "100",
            "FAKE_CF_CTL": cf.url,
            "FAKE_CLOUDFLARED_LOG": str(tmp_path / "cloudflared.log")}


def start_cp(start, cf, ita, oidc, tmp_path, **extra):
    env = base_env(cf, ita, oidc, tmp_path)
    env.update(cf.env())
    env.update({"DD_HOSTNAME": f"{ENV}.{DOMAIN}",
                "DD_CF_AGENT_PORT": str(AGENT_PORT),
                "DD_CF_AGENT_API_PORT": str(API_PORT),
                "DD_CF_TIMEOUT_MS": "2000", "DD_CF_ATTEMPTS": "2",
                "DD_CF_MAX_WAIT_MS": "100",
                "DD_POWEROFF_MARKER": str(tmp_path / "poweroff")})
    env.update(extra)
    cp = start([DD_BIN, "cp"], env)
    # Its own tunnel first (the -shell CNAME is written last), done when
    # its connector runs (the CP has the answer, not just the fake).
    wait_for(lambda: f"{ENV}-shell.{DOMAIN}" in cf.cnames(),
             what="the CP's own CNAMEs")
    own = [t for n, t in cf.live_tunnels().items()
           if n.startswith(f"dd-{ENV}-cp-")]
    assert len(own) == 1
    wait_for(lambda: cf.tunnel_state(own[0])["connections"] >= 1,
             what="the CP's connector")
    return cp


def start_agent(start, cf, ita, oidc, tmp_path, cp, **extra):
    env = base_env(cf, ita, oidc, tmp_path)
    env.update({"DD_API_PORT": "0", "DD_CP_URL": f"http://127.0.0.1:{cp.port}",
                "DD_REGISTER_BACKOFF_MS": "50", "DD_EE_WAIT_SECS": "0"})
    env.update(extra)
    return start([DD_BIN, "agent"], env)


def health(agent):
    return request(agent.port, "GET", "/health").json()


def agent_id_of(pub_hex):
    return f"dd-{ENV}-agent-" + hashlib.sha256(bytes.fromhex(pub_hex)).hexdigest()[:16]


def api_host(aid):
    return aid.replace("-agent-", "-api-", 1) + "." + DOMAIN


def fresh_nonce(cp):
    r = request(cp.port, "GET", "/register/nonce")
    assert r.status == 200, r.body
    return r.json()["nonce"]


def evidence(cp, ita, pub_hex):
    """A fresh nonce and a genuine token binding it to the Noise key."""
    n = fresh_nonce(cp)
    rd = hashlib.sha512(b"devopsdefender/register/v1" + bytes.fromhex(n) +
                        bytes.fromhex(pub_hex)).digest()
    return {"nonce": n, "noise_pubkey": pub_hex,
            "ita_token": ita.mint(quote_for(rd))}


def post(cp, path, body):
    return request(cp.port, "POST", path, JSON, json.dumps(body).encode())


def fleet(cp):
    r = request(cp.port, "GET", "/api/agents",
                {"Cookie": f"dd_session={mint_session(session_claims())}"})
    assert r.status == 200, r.body
    return {a["agent_id"]: a for a in r.json()}


def tunnel_of(cf, aid):
    tid = cf.live_tunnels().get(aid)
    assert tid, f"no tunnel named {aid}: {cf.live_tunnels()}"
    return tid


def rules(cf, tid):
    return [(r.get("hostname"), r["service"]) for r in cf.ingress(tid)]


def test_registration_creates_the_tunnel_and_the_agent_connects(
        start, cf, ita, oidc, tmp_path):
    cp = start_cp(start, cf, ita, oidc, tmp_path)
    agent = start_agent(start, cf, ita, oidc, tmp_path, cp)
    h = wait_for(lambda: (lambda h: h if h["agent_id"] else None)(health(agent)),
                 what="registration")
    aid = h["agent_id"]
    assert aid == agent_id_of(h["noise"]["pubkey_hex"])
    host = f"{aid}.{DOMAIN}"
    # The tunnel is named by the agent id, routes the API hostname and
    # then the agent's hostname on the configured ports, then 404.
    tid = tunnel_of(cf, aid)
    assert rules(cf, tid) == [(api_host(aid), f"http://localhost:{API_PORT}"),
                              (host, f"http://localhost:{AGENT_PORT}"),
                              (None, "http_status:404")]
    created = cf.calls("POST", r"/cfd_tunnel$")
    assert [c["body"]["config_src"] for c in created
            if c["body"]["name"] == aid] == ["cloudflare"]
    # The CNAMEs point at the tunnel.
    names = cf.cnames()
    assert names[host] == names[api_host(aid)] == f"{tid}.cfargotunnel.com"
    # The agent runs its connector with the token, which connects.
    wait_for(lambda: cf.tunnel_state(tid)["connections"] >= 1,
             what="the agent's connector to connect with its token")
    starts = [json.loads(l) for l in
              open(tmp_path / "cloudflared.log").read().splitlines()]
    assert any(s["token_set"] and not s["dd_vars"] for s in starts)
    wait_for(lambda: health(agent).get("cloudflared", {}).get("state")
             == "running", what="the connector in /health")
    # The store has a tunnel agent, registering (never scraped healthy
    # just for registering), under its public hostname.
    a = fleet(cp)[aid]
    assert a["tunnel_id"] == tid and a["hostname"] == host
    assert a["ingress"]["kind"] == "tunnel"
    assert a["ingress"]["details"]["url"] == f"https://{host}"
    assert a["status"] == "registering"
    # The token is a secret: in neither log, nor in the agent's /health.
    token = cf.tunnels[tid]["_token"]
    assert token not in cp.output() and token not in agent.output()
    assert token not in json.dumps(health(agent))
    assert f"registered {aid}" in cp.output()
    # The views see no drift for this agent.
    s = request(cp.port, "GET", "/admin/cf/snapshot",
                {"Cookie": f"dd_session={mint_session(session_claims())}"})
    assert s.status == 200, s.body
    d = s.json()["drift"]
    assert not [m for m in d["missing_dns"] if aid in json.dumps(m)], d
    assert not [t for t in d["orphan_tunnels"] if t["id"] == tid], d


def test_register_answer_extras_in_order_and_reuse_by_name(
        start, cf, ita, oidc, tmp_path):
    cp = start_cp(start, cf, ita, oidc, tmp_path)
    pub = "5a" * 32
    aid = agent_id_of(pub)
    host = f"{aid}.{DOMAIN}"
    body = {"vm_name": "vm-extras", "url": "http://127.0.0.1:9",
            "extra_ingress": [{"hostname_label": "oracle", "port": 8082},
                              {"hostname_label": "web", "port": 9000}]}
    # Legacy Access apps: one on the agent's web host goes, a wildcard
    # and another zone's stay (spec 1.7 with our wildcard rule).
    legacy = cf.seed_app("legacy", domain=f"{aid}-web.{DOMAIN}")
    wild = cf.seed_app("wild", domain=f"*.{DOMAIN}")
    other = cf.seed_app("other", domain="app.example.org")
    r = post(cp, "/register", dict(body, **evidence(cp, ita, pub)))
    assert r.status == 200, r.body
    v = r.json()
    tid = tunnel_of(cf, aid)
    assert v["agent_id"] == aid and v["hostname"] == host
    assert v["tunnel_token"] == cf.tunnels[tid]["_token"]
    assert v["ingress"] == {
        "kind": "tunnel", "hostname": host, "url": f"https://{host}",
        "tunnel_id": tid,
        "extra_hostnames": [f"{aid}-oracle.{DOMAIN}", f"{aid}-web.{DOMAIN}",
                            api_host(aid)]}
    # Extras in the order given, the API hostname, the primary, 404.
    assert rules(cf, tid) == [
        (f"{aid}-oracle.{DOMAIN}", "http://localhost:8082"),
        (f"{aid}-web.{DOMAIN}", "http://localhost:9000"),
        (api_host(aid), f"http://localhost:{API_PORT}"),
        (host, f"http://localhost:{AGENT_PORT}"),
        (None, "http_status:404")]
    for h in (host, api_host(aid), f"{aid}-oracle.{DOMAIN}",
              f"{aid}-web.{DOMAIN}"):
        assert cf.cnames()[h] == f"{tid}.cfargotunnel.com", h
    assert legacy not in cf.apps and {wild, other} <= set(cf.apps)
    assert f"{aid}: deleted 1 legacy Access app(s)" in cp.output()
    assert f"{aid}: 1 wildcard Access app(s) cover its hosts" in cp.output()
    # Registering again with the same key reuses the tunnel (and token);
    # a failing Access cleanup is only logged (spec 1.6).
    cf.fail(r"access/apps", 500, count=10)
    r = post(cp, "/register", dict(body, **evidence(cp, ita, pub)))
    assert r.status == 200, r.body
    assert f"{aid}: legacy Access cleanup failed (ignored)" in cp.output()
    assert r.json()["tunnel_token"] == v["tunnel_token"]
    assert [n for n in cf.live_tunnels() if n == aid] == [aid]
    assert len([c for c in cf.calls("POST", r"/cfd_tunnel$")
                if c["body"]["name"] == aid]) == 1
    # A label that makes no DNS name is refused before Cloudflare.
    n_calls = len(cf.calls())
    r = post(cp, "/register", dict(body, **evidence(cp, ita, "5b" * 32),
                                   extra_ingress=[{"hostname_label": "Bad_",
                                                   "port": 1}]))
    assert r.status == 400 and r.json()["code"] == "bad_request", r.body
    assert len([c for c in cf.calls()[n_calls:]
                if "cfd_tunnel" in c["path"]]) == 0


def test_ingress_replace_adds_and_removes_extras_for_that_agent_only(
        start, cf, ita, oidc, tmp_path):
    ee = FakeEE(str(tmp_path / "ee.sock")).start()
    try:
        cp = start_cp(start, cf, ita, oidc, tmp_path)
        agent = start_agent(start, cf, ita, oidc, tmp_path, cp,
                            EE_SOCKET_PATH=ee.path)
        h = wait_for(lambda: (lambda h: h if h["agent_id"] else None)(
            health(agent)), what="registration")
        aid, pub = h["agent_id"], h["noise"]["pubkey_hex"]
        host = f"{aid}.{DOMAIN}"
        tid = tunnel_of(cf, aid)
        web = f"{aid}-web.{DOMAIN}"
        # A deployed workload exposes a port: the agent pushes its extras.
        spec = {"app_name": "web", "cmd": ["web"],
                "expose": {"hostname_label": "web", "port": 9000}}
        r = request(agent.port, "POST", "/deploy",
                    dict(JSON, Authorization=f"Bearer {oidc.token('acme', 4242)}"),
                    json.dumps(spec).encode())
        assert r.status == 200, r.body
        wait_for(lambda: (web, "http://localhost:9000") in rules(cf, tid),
                 what="the exposed port in the tunnel's ingress")
        assert rules(cf, tid) == [(web, "http://localhost:9000"),
                                  (api_host(aid), f"http://localhost:{API_PORT}"),
                                  (host, f"http://localhost:{AGENT_PORT}"),
                                  (None, "http_status:404")]
        # The CNAMEs follow the configuration.
        wait_for(lambda: cf.cnames().get(web) == f"{tid}.cfargotunnel.com",
                 what="the exposed port's CNAME")
        wait_for(lambda: fleet(cp)[aid]["extras"] == [["web", 9000]],
                 what="the extras stored")

        # Someone else's evidence naming this agent: refused, untouched.
        puts = len(cf.calls("PUT", r"/configurations$"))
        mine = {"agent_id": aid, "extra_ingress": [
            {"hostname_label": "evil", "port": 1}]}
        # (a) the agent's own public token replayed: not bound to a nonce.
        r = post(cp, "/ingress/replace", dict(
            mine, nonce=fresh_nonce(cp), noise_pubkey=pub,
            ita_token=h["ita_token"]))
        assert r.status == 401 and r.json()["code"] == "binding_mismatch", r.body
        # (b) genuine evidence bound to another key (another agent's).
        other = "6c" * 32
        reg = post(cp, "/register", dict(
            {"vm_name": "other", "url": "http://127.0.0.1:9"},
            **evidence(cp, ita, other)))
        assert reg.status == 200, reg.body
        r = post(cp, "/ingress/replace", dict(mine, **evidence(cp, ita, other)))
        assert r.status == 403 and r.json()["code"] == "not_this_agent", r.body
        # (c) another agent's evidence naming itself may not steer ours.
        assert len(cf.calls("PUT", r"/configurations$")) == puts + 1  # other's
        assert (f"{aid}-evil.{DOMAIN}") not in cf.cnames()
        assert all(h != f"{aid}-evil.{DOMAIN}" for h, _ in rules(cf, tid))

        # The agent itself (its key, fresh evidence): a new list replaces
        # the old; web's CNAME goes, shell's comes.
        r = post(cp, "/ingress/replace", dict(
            {"agent_id": aid,
             "extra_ingress": [{"hostname_label": "shell", "port": 7682}]},
            **evidence(cp, ita, pub)))
        assert r.status == 200, r.body
        v = r.json()
        shell = f"{aid}-shell.{DOMAIN}"
        assert v["extra_hostnames"] == [shell, api_host(aid)]
        assert v["removed_hostnames"] == [web]
        assert rules(cf, tid)[0] == (shell, "http://localhost:7682")
        assert web not in cf.cnames()
        assert cf.cnames()[shell] == f"{tid}.cfargotunnel.com"
        assert cf.cnames()[host] == f"{tid}.cfargotunnel.com"
        # Same tunnel, same connector: nothing was recreated.
        assert cf.live_tunnels()[aid] == tid
        assert fleet(cp)[aid]["extras"] == [["shell", 7682]]

        # Cloudflare failing: a clear 502, the store keeps the old extras.
        cf.fail(r"/configurations", 500, count=10)
        r = post(cp, "/ingress/replace", dict(
            {"agent_id": aid, "extra_ingress": []}, **evidence(cp, ita, pub)))
        assert r.status == 502, r.body
        assert r.json()["code"] == "cloudflare_failed"
        assert "CF " in r.json()["message"] and "500" in r.json()["message"]
        assert fleet(cp)[aid]["extras"] == [["shell", 7682]]
    finally:
        ee.stop()


def test_cloudflare_outage_at_register_records_no_agent(
        start, cf, ita, oidc, tmp_path):
    cp = start_cp(start, cf, ita, oidc, tmp_path)
    before = request(cp.port, "GET", "/health").json()["agent_count"]
    pub = "7d" * 32
    aid = agent_id_of(pub)
    # Creating the tunnel fails (POST is never retried on 500).
    cf.fail(r"cfd_tunnel$", 500, count=1000, method="POST")
    r = post(cp, "/register", dict({"vm_name": "vm-outage",
                                    "url": "http://127.0.0.1:9"},
                                   **evidence(cp, ita, pub)))
    assert r.status == 502, r.body
    e = r.json()
    assert e["code"] == "cloudflare_failed"
    assert "tunnel" in e["message"] and "CF POST" in e["message"], e
    assert request(cp.port, "GET", f"/register/{aid}").status == 404
    assert request(cp.port, "GET", "/health").json()["agent_count"] == before
    assert aid not in fleet(cp)
    # A real agent during the outage keeps trying and is not recorded.
    agent = start_agent(start, cf, ita, oidc, tmp_path, cp)
    wait_for(lambda: "registration attempt 2 failed" in agent.output(),
             what="the agent to retry")
    h = health(agent)
    assert not h["agent_id"] and "cloudflared" not in h
    real = agent_id_of(h["noise"]["pubkey_hex"])
    assert f"registration of {real}: Cloudflare: CF POST" in cp.output()
    assert request(cp.port, "GET", f"/register/{real}").status == 404
    # The outage ends: the agent registers and gets its tunnel.
    with cf._lock:
        cf._faults.clear()
    wait_for(lambda: health(agent)["agent_id"] == real, what="registration")
    tid = tunnel_of(cf, real)
    wait_for(lambda: cf.tunnel_state(tid)["connections"] >= 1,
             what="the connector")
    assert request(cp.port, "GET", f"/register/{real}").status == 200


def test_a_cp_stopping_mid_registration_answers_and_exits_clean(
        start, cf, ita, oidc, tmp_path):
    """Cloudflare still working on a tunnel when the CP stops: the call
    is cancelled, the agent hears 503 (or loses the connection), nothing
    is recorded, and the CP exits 0 without leaks."""
    import threading
    # The drain ends well before Cloudflare's answer or our timeout.
    cp = start_cp(start, cf, ita, oidc, tmp_path, DD_DRAIN_TIMEOUT_MS="300")
    cf.fail(r"cfd_tunnel$", status=None, delay=4, method="POST", count=1)
    aid = agent_id_of("8e" * 32)
    body = dict({"vm_name": "vm-slow", "url": "http://127.0.0.1:9"},
                **evidence(cp, ita, "8e" * 32))
    out = {}

    def go():
        try:
            out["r"] = post(cp, "/register", body)
        except OSError as e:
            out["r"] = e

    t = threading.Thread(target=go)
    t.start()
    wait_for(lambda: [c for c in cf.calls("POST", r"/cfd_tunnel$")
                      if c["body"]["name"] == aid],
             what="the create call to reach Cloudflare")
    cp.send_signal(15)
    t.join(30)
    r = out["r"]
    if not isinstance(r, OSError):
        assert r.status == 503, r.body
        assert r.json()["code"] in ("cloudflare_failed", "shutting_down")
    assert cp.proc.wait(30) == 0, cp.output()[-3000:]
    assert "registered dd-" not in cp.output()
    # The call was cut short by the stop, not answered by Cloudflare.
    said = f"registration of {aid}: Cloudflare: "
    assert said in cp.output()
    assert "cancelled" in cp.output().split(said)[1]
