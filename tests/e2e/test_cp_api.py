"""The CP's machine-facing fleet API end to end (docs/control-plane.md):
GET /api/agents for every kind of caller, the attested export, a successor
CP hydrating from its predecessor, and the control-plane entry.

The CP attests against the fake Intel Trust Authority (fake_ita.py) with
simulated quotes, so these tests can also sign ITA tokens that are
genuine but expired, meant for an audience, unbound, or badly signed.
GitHub Actions tokens come from fake_oidc.py.
"""
import base64
import hashlib
import json
import os
import tempfile
import time

import jwt
import pytest

from conftest import DD_BIN, request, wait_for
from fake_ita import FakeITA
from fake_oidc import FakeOIDC
from test_auth import mint_session, session_claims
from tsm_standin import base_quote, quote_for

ISSUER = "https://ita.e2e.test"
API_KEY = "cp-api-e2e-key"
PUBLIC = {"agent_id", "hostname", "vm_name", "attestation_type", "status",
          "last_seen", "agent_mode", "integrity_state", "deployment_count",
          "unit_count", "oracle_count"}


@pytest.fixture
def ita():
    f = FakeITA(api_key=API_KEY, issuer=ISSUER).start()
    yield f
    f.stop()


@pytest.fixture
def oidc():
    o = FakeOIDC().start()
    yield o
    o.stop()


def ita_env(ita, oidc):
    return {"DD_DEV": "1", "DD_ITA_MODE": "intel", "DD_QUOTE_PROVIDER": "sim",
            "DD_ITA_BASE_URL": ita.url, "DD_ITA_JWKS_URL": ita.certs_url,
            "DD_ITA_ISSUER": ita.issuer, "DD_ITA_API_KEY": ita.api_key,
            **oidc.env()}


def start_cp(start, ita, oidc, **extra):
    env = ita_env(ita, oidc)
    env.update({k: str(v) for k, v in extra.items()})
    return start([DD_BIN, "cp"], env)


def start_agent(start, ita, oidc, cp, **extra):
    env = dict(ita_env(ita, oidc), DD_API_PORT="0",
               DD_CP_URL=f"http://127.0.0.1:{cp.port}",
               DD_REGISTER_BACKOFF_MS="50", DD_EE_WAIT_SECS="0")
    env.update(extra)
    return start([DD_BIN, "agent"], env)


def get(cp, path, token=None, session=None, headers=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if session is not None:
        h["Cookie"] = f"dd_session={session}"
    return request(cp.port, "GET", path, h)


def agents(cp, **kw):
    r = get(cp, "/api/agents", **kw)
    assert r.status == 200, r.body
    return {a["agent_id"]: a for a in r.json()}


def registered(start, ita, oidc, cp, **extra):
    """An agent registered with cp; returns (agent process, its id)."""
    agent = start_agent(start, ita, oidc, cp, **extra)
    h = wait_for(lambda: (lambda h: h if h.get("agent_id") else None)(
        request(agent.port, "GET", "/health").json()), what="registration")
    return agent, h["agent_id"]


def assert_public(entry):
    assert set(entry) == PUBLIC, sorted(entry)
    assert entry["last_seen"].endswith("+00:00"), entry["last_seen"]


def ita_token(ita, **claims):
    """A genuine token of the CP's ITA (signed by its key), claims forced."""
    ita.set_claims(claims)
    try:
        return ita.mint(base_quote())
    finally:
        ita.set_claims({})


def resign_none(token):
    """The same claims under alg none: no signature at all."""
    body = token.split(".")[1]
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
    return head.decode() + "." + body + "."


def flip_signature(token):
    h, b, s = token.split(".")
    s = ("A" if s[0] != "A" else "B") + s[1:]
    return ".".join((h, b, s))


# --- /api/agents -----------------------------------------------------------

def test_anonymous_and_loopback_get_public_fields(start, ita, oidc):
    cp = start_cp(start, ita, oidc)
    _, aid = registered(start, ita, oidc, cp)
    wait_for(lambda: len(agents(cp)) == 2, what="the agent and the CP entry")
    listed = agents(cp)
    assert set(listed) == {"control-plane", aid}
    # Our test client connects from 127.0.0.1: loopback grants nothing.
    for entry in listed.values():
        assert_public(entry)
    cpe = listed["control-plane"]
    assert cpe["status"] == "healthy" and cpe["vm_name"] == "dd-dev-cp"
    assert cpe["attestation_type"] == "simulated"
    raw = get(cp, "/api/agents").body
    for secret in (b"noise_pubkey", b"\"ita\"", b"owner", b"ingress",
                   b"127.0.0.1", b"tdx_mrtd", b"extras"):
        assert secret not in raw, secret


def test_full_records_for_owner_and_admin(start, ita, oidc):
    cp = start_cp(start, ita, oidc)
    _, aid = registered(start, ita, oidc, cp)
    wait_for(lambda: len(agents(cp)) == 2, what="two entries")
    owner = agents(cp, token=oidc.token("acme", 4242))
    admin = agents(cp, session=mint_session(session_claims()))
    for full in (owner, admin):
        assert set(full) == {"control-plane", aid}
        a = full[aid]
        assert a["ita"]["mrtd"] and a["noise_pubkey"] and "owner" in a
        assert a["ingress"]["kind"] == "direct"
        assert a["last_seen"].endswith("+00:00")
        assert full["control-plane"]["ita"]["extra"]["attester_type"] == "TDX"
    # Someone else's CI token is served as anyone; so is a plain user
    # whose agents these are not.
    stranger = agents(cp, token=oidc.token("evil", 666))
    user = agents(cp, session=mint_session(session_claims(
        login="mallory", user_id=777, orgs=[], is_fleet_admin=False)))
    for view in (stranger, user):
        assert set(view) == {"control-plane", aid}
        for entry in view.values():
            assert_public(entry)


def test_bad_bearers_are_refused(start, ita, oidc):
    cp = start_cp(start, ita, oidc)
    good_ita = ita_token(ita)
    now = int(time.time())
    cases = {
        "expired ITA": ita_token(ita, exp=now - 3600, iat=now - 7200,
                                 nbf=now - 7200),
        "ITA with an audience": ita_token(ita, aud="someone-else"),
        "ITA alg none": resign_none(good_ita),
        "ITA bad signature": flip_signature(good_ita),
        "ITA of another issuer": ita_token(ita, iss="https://evil.test"),
        "expired OIDC": oidc.token("acme", 4242, exp=now - 3600,
                                   iat=now - 7200, nbf=now - 7200),
        "OIDC wrong audience": oidc.token("acme", 4242, aud="not-dd"),
        "OIDC alg none": resign_none(oidc.token("acme", 4242)),
        "OIDC bad signature": flip_signature(oidc.token("acme", 4242)),
        "garbage": "not.a.token",
    }
    for name, tok in cases.items():
        r = get(cp, "/api/agents", token=tok)
        assert r.status == 401, (name, r.status, r.body)
        assert r.json()["code"] in ("bad_token", "unauthenticated"), name
    # A genuine ITA token proves a TDX VM, not who asks: public fields.
    for entry in agents(cp, token=good_ita).values():
        assert_public(entry)


# --- the export ------------------------------------------------------------

def fresh_nonce(cp):
    r = request(cp.port, "GET", "/register/nonce")
    assert r.status == 200
    return r.json()["nonce"]


def export_binding(nonce_hex):
    return hashlib.sha512(b"devopsdefender/export/v1" +
                          bytes.fromhex(nonce_hex)).digest()


def bound_token(ita, nonce_hex):
    """What a successor CP presents: an ITA token over the export binding."""
    return ita.mint(quote_for(export_binding(nonce_hex)))


def test_export_needs_a_bound_attested_successor(start, ita, oidc):
    cp = start_cp(start, ita, oidc)
    _, aid = registered(start, ita, oidc, cp)
    path = "/api/v1/admin/export?nonce="
    # Nothing, or the wrong kind of credential.
    r = get(cp, path + fresh_nonce(cp))
    assert r.status == 401 and r.json()["code"] == "unauthenticated"
    r = get(cp, path + fresh_nonce(cp),
            session=mint_session(session_claims(is_fleet_admin=False)))
    assert r.status == 403
    r = get(cp, path + fresh_nonce(cp), token=oidc.token("evil", 666))
    assert r.status == 403
    # Bad tokens.
    n = fresh_nonce(cp)
    good = bound_token(ita, n)
    now = int(time.time())
    for name, tok in {
        "bad signature": flip_signature(good),
        "alg none": resign_none(good),
        "expired": (ita.set_claims({"exp": now - 3600, "iat": now - 7200,
                                    "nbf": now - 7200}),
                    bound_token(ita, fresh_nonce(cp)),
                    ita.set_claims({}))[1],
    }.items():
        r = get(cp, path + fresh_nonce(cp), token=tok)
        assert r.status == 401, (name, r.body)
        assert r.json()["code"] in ("bad_token", "binding_mismatch"), name
    # Genuine but not bound to this nonce: a token scraped from /health,
    # the CP's own public token, one bound to another nonce.
    scraped = ita_token(ita)
    cp_own = request(cp.port, "GET", "/health?verbose=1").json()["cp_ita"]
    for name, tok in {"scraped": scraped, "cp's own": cp_own,
                      "other nonce": bound_token(ita, fresh_nonce(cp))}.items():
        r = get(cp, path + fresh_nonce(cp), token=tok)
        assert r.status == 401, (name, r.body)
        assert r.json()["code"] == "binding_mismatch", name
    # A nonce we never issued, or one already burnt.
    r = get(cp, path + "ab" * 32, token=bound_token(ita, "ab" * 32))
    assert r.status == 401 and r.json()["code"] == "stale_nonce"
    r = get(cp, path + "12", token=good)
    assert r.status == 400
    # The bound token, its nonce fresh: the export.
    r = get(cp, path + n, token=good)
    assert r.status == 200, r.body
    ids = {a["agent_id"] for a in r.json()["agents"]}
    assert {"control-plane", aid} <= ids
    rec = [a for a in r.json()["agents"] if a["agent_id"] == aid][0]
    assert rec["last_seen"].endswith("Z") and rec["ita"]["mrtd"]
    # The same nonce again: burnt.
    r = get(cp, path + n, token=good)
    assert r.status == 401 and r.json()["code"] == "stale_nonce"
    # Lower-case "bearer" is not the spec's export header.
    n = fresh_nonce(cp)
    r = request(cp.port, "GET", path + n,
                {"Authorization": "bearer " + bound_token(ita, n)})
    assert r.status == 401
    # The owner's CI token and an admin need no nonce.
    for kw in ({"token": oidc.token("acme", 4242)},
               {"session": mint_session(session_claims())}):
        r = get(cp, "/api/v1/admin/export", **kw)
        assert r.status == 200 and {"control-plane", aid} <= {
            a["agent_id"] for a in r.json()["agents"]}


def test_pinned_cp_refuses_an_unpinned_successor(start, ita, oidc):
    mrtd = request(start_cp(start, ita, oidc).port, "GET",
                   "/health").json()["attestation"]["mrtd"]
    cp = start_cp(start, ita, oidc, DD_EXPECTED_MRTD=mrtd,
                  DD_EXPECTED_TCB="UpToDate")
    n = fresh_nonce(cp)
    tok = ita.mint(quote_for(export_binding(n), mrtd="cd" * 48))
    r = get(cp, "/api/v1/admin/export?nonce=" + n, token=tok)
    assert r.status == 401 and r.json()["code"] == "not_pinned", r.body


# --- hydrate ---------------------------------------------------------------

def test_successor_hydrates_and_keeps_it_across_restart(start, ita, oidc):
    d = tempfile.mkdtemp(prefix="dd-cp-api-")
    old = start_cp(start, ita, oidc, DD_STORE_PATH=os.path.join(d, "old.db"))
    _, aid = registered(start, ita, oidc, old)
    wait_for(lambda: aid in agents(old), what="the agent listed")
    owner = oidc.token("acme", 4242)
    before = {a["agent_id"]: a for a in get(
        old, "/api/v1/admin/export", token=owner).json()["agents"]}

    new_db = os.path.join(d, "new.db")
    new = start_cp(start, ita, oidc, DD_STORE_PATH=new_db,
                   DD_PREDECESSOR_URL=f"http://127.0.0.1:{old.port}")
    assert "hydrated 2 agents" in new.output(), new.output()[-2000:]
    after = {a["agent_id"]: a for a in get(
        new, "/api/v1/admin/export", token=oidc.token("acme", 4242)).json()["agents"]}
    assert aid in after
    # The agent's record came across (the new CP's collector may have
    # refreshed its claims since; registered_at is only ever imported)...
    for key in ("hostname", "vm_name", "noise_pubkey", "ingress",
                "registered_at", "env"):
        assert after[aid][key] == before[aid][key], key
    assert after[aid]["ita"]["mrtd"] == before[aid]["ita"]["mrtd"]
    # ...and the control-plane entry is the new CP's own, written after.
    assert after["control-plane"]["registered_at"] != \
        before["control-plane"]["registered_at"]
    assert after["control-plane"]["ita"]["iat"] >= \
        before["control-plane"]["ita"]["iat"]

    # The successor restarts on its own store: nothing is lost, no
    # predecessor needed.
    assert new.stop() == 0 and old.stop() == 0
    again = start_cp(start, ita, oidc, DD_STORE_PATH=new_db)
    assert aid in agents(again)


def test_hydrate_failure_still_boots(start, ita, oidc):
    cp = start_cp(start, ita, oidc, DD_PREDECESSOR_URL="http://127.0.0.1:9")
    assert "hydrate from http://127.0.0.1:9 failed" in cp.output()
    wait_for(lambda: set(agents(cp)) == {"control-plane"},
             what="the CP's own entry")


# --- the control-plane entry --------------------------------------------------

def test_control_plane_entry_is_refreshed_and_takes_no_ingress(start, ita, oidc):
    cp = start_cp(start, ita, oidc)
    admin = mint_session(session_claims())
    first = wait_for(lambda: agents(cp, session=admin).get("control-plane"),
                     what="the control-plane entry")
    assert first["ingress"] == {"kind": "none"} and first["owner"] is None
    assert first["extras"] == [] and first["tunnel_id"] == ""
    # Every collector tick (5 s) refreshes last_seen.
    wait_for(lambda: agents(cp, session=admin)["control-plane"]["last_seen"]
             != first["last_seen"], timeout=15, what="a refresh")
    # /ingress/replace cannot give it ingress, even with evidence that is
    # genuine and bound.
    n = fresh_nonce(cp)
    pub = bytes.fromhex("11" * 32)
    rd = hashlib.sha512(b"devopsdefender/register/v1" + bytes.fromhex(n) +
                        pub).digest()
    body = {"agent_id": "control-plane", "ita_token": ita.mint(quote_for(rd)),
            "nonce": n, "noise_pubkey": pub.hex(),
            "extra_ingress": [{"hostname_label": "x", "port": 80}]}
    r = request(cp.port, "POST", "/ingress/replace",
                {"Content-Type": "application/json"}, json.dumps(body).encode())
    assert r.status == 403 and r.json()["code"] == "not_this_agent", r.body
    assert agents(cp, session=admin)["control-plane"]["extras"] == []
    # /health counts it (spec 3.2).
    h = request(cp.port, "GET", "/health").json()
    assert h["agent_count"] == 1 and h["healthy_count"] == 1


def test_a_tenant_sees_its_own_agent_in_full(start, ita, oidc):
    cp = start_cp(start, ita, oidc)
    agent, aid = registered(start, ita, oidc, cp)
    body = {"agent_owner": "carol", "agent_owner_id": 1003,
            "agent_owner_kind": "user"}
    r = request(agent.port, "POST", "/owner",
                {"Content-Type": "application/json",
                 "Authorization": "Bearer " + oidc.token("acme", 4242)},
                json.dumps(body).encode())
    assert r.status == 200, r.body
    admin = mint_session(session_claims())
    # The collector brings the tenant over on its next scrape.
    wait_for(lambda: (agents(cp, session=admin)[aid].get("owner") or {})
             .get("name") == "carol", timeout=20, what="the owner mirrored")
    carol = agents(cp, session=mint_session(session_claims(
        login="carol", user_id=1003, orgs=[], is_fleet_admin=False)))
    assert carol[aid]["owner"] == {"name": "carol", "id": 1003, "kind": "user"}
    assert carol[aid]["ita"]["mrtd"]
    assert_public(carol["control-plane"])
    # Another user, and a user with carol's login but another id: public.
    for claims in (session_claims(login="bob", user_id=1004, orgs=[],
                                  is_fleet_admin=False),
                   session_claims(login="carol", user_id=9999, orgs=[],
                                  is_fleet_admin=False)):
        for entry in agents(cp, session=mint_session(claims)).values():
            assert_public(entry)
