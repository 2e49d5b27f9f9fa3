"""The CP's fleet dashboard end to end (spec http-surface.md 3.6, 3.7,
5.5, 7.1, 7.2): the real CP, two real agents that register through the
local ITA and are scraped by the CP's collector, and sessions of four
people: a fleet admin, a user who is one agent's tenant, a member of the
org that is the other agent's tenant, and a stranger.

Checked both ways: who is refused (307 for browsers, 401 for the rest),
who sees which agents (in the page, the fragment, the JSON and the
detail pages), that the 404 for an agent one may not see is the very
same page as for one that does not exist, and the JSON's shape."""
import os
import tempfile
import time
import urllib.parse

import pytest

from conftest import DD_BIN, request
from fake_ee import FakeEE
from test_agent_api import OWNER, agent_env, call, oidc  # noqa: F401 (fixture)
from test_auth import mint_session, session_claims

ADMIN = session_claims()                                    # alice, admin
TENANT = session_claims(login="tina", user_id=501, orgs=[],
                        is_fleet_admin=False)
MEMBER = session_claims(login="mo", user_id=777, orgs=["tenant-co"],
                        is_fleet_admin=False)
STRANGER = session_claims(login="mallory", user_id=666, orgs=["evil-co"],
                          is_fleet_admin=False)


@pytest.fixture
def ees():
    d = tempfile.mkdtemp(prefix="dd-ee-")
    es = [FakeEE(os.path.join(d, f"ee{i}.sock")).start() for i in (1, 2)]
    yield es
    for e in es:
        e.stop()


def get(port, path, session=None, accept=None, bearer=None):
    h = {}
    if session:
        h["Cookie"] = f"dd_session={session}"
    if bearer:
        h["Authorization"] = f"Bearer {bearer}"
    if accept:
        h["Accept"] = accept
    return request(port, "GET", path, h)


def fleet_json(cp, claims):
    r = get(cp.port, "/api/fleet", mint_session(claims), "application/json")
    assert r.status == 200, r.body
    assert r.header("content-type").startswith("application/json")
    return r.json()


@pytest.fixture
def fleet(start, ita_env, oidc, ees):
    """A CP and two registered, scraped agents: vm-one's tenant is the
    user tina (501), vm-two's the org tenant-co."""
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    cp_url = f"http://127.0.0.1:{cp.port}"
    agents = [start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=cp_url, DD_VM_NAME=vm))
        for ee, vm in zip(ees, ("vm-one", "vm-two"))]
    tenants = ({"agent_owner": "tina", "agent_owner_id": 501,
                "agent_owner_kind": "user"},
               {"agent_owner": "tenant-co", "agent_owner_id": 42,
                "agent_owner_kind": "org"})
    for a, body in zip(agents, tenants):
        r = call(a, "POST", "/owner", oidc.token("acme", 4242), body)
        assert r.status == 200, r.body
    # The collector mirrors each tenant into the store on its next scrape.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        recs = {a["vm_name"]: a for a in fleet_json(cp, ADMIN)["agents"]}
        if all(recs.get(vm, {}).get("owner") and
               recs[vm]["status"] == "healthy" for vm in ("vm-one", "vm-two")):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"agents never became healthy with owners: {recs}")
    return cp, {vm: recs[vm]["agent_id"] for vm in recs}


def test_who_is_refused(fleet):
    cp, ids = fleet
    one = ids["vm-one"]
    # Browsers (no Accept, HTML, anything) are sent to sign in ...
    for path in ("/", "/api/fleet", f"/agent/{one}", "/agent/nope"):
        for accept in (None, "text/html,application/xhtml+xml", "*/*"):
            r = get(cp.port, path, accept=accept)
            assert r.status == 307, (path, accept, r.status)
            loc = r.header("location")
            assert "return_to=" in loc and urllib.parse.quote(path, "") in loc
            assert one.encode() not in r.body
    # ... everything else gets 401, with nothing of the fleet in it.
    for path in ("/", "/api/fleet", f"/agent/{one}"):
        r = get(cp.port, path, accept="application/json")
        assert r.status == 401, path
        assert b"vm-one" not in r.body and one.encode() not in r.body
    # A session that does not verify is no session.
    bad = mint_session(dict(ADMIN, exp=int(time.time()) - 5))
    assert get(cp.port, "/api/fleet", bad, "application/json").status == 401
    forged = mint_session(ADMIN)[:-2] + "AA"
    r = get(cp.port, "/api/fleet", accept="application/json", bearer=forged)
    assert r.status == 401
    # The session as a bearer (native clients) works like the cookie.
    r = get(cp.port, "/api/fleet", accept="application/json",
            bearer=mint_session(ADMIN))
    assert r.status == 200
    assert {"vm-one", "vm-two"} <= {a["vm_name"] for a in r.json()["agents"]}


def test_json_shape(fleet):
    cp, ids = fleet
    j = fleet_json(cp, ADMIN)
    assert set(j) >= {"generated_at", "env", "hostname", "summary", "agents"}
    assert j["generated_at"].endswith("+00:00") and j["env"] == "dev"
    assert j["simulated"] is True
    assert j["summary"] == {"agents": len(j["agents"]), "healthy": sum(
        a["status"] == "healthy" for a in j["agents"]), "units": 0, "oracles": 0}
    keys = [a["agent_id"] for a in j["agents"]]
    assert keys == sorted(keys) and set(ids.values()) <= set(keys)
    rec = next(a for a in j["agents"] if a["vm_name"] == "vm-one")
    # Full records: claims, ingress, owner.
    assert rec["owner"] == {"name": "tina", "id": 501, "kind": "user"}
    assert rec["ita"]["tcb_status"] and rec["ita"]["mrtd"]
    assert rec["last_seen"].endswith("Z") and rec["agent_mode"] == "read_write"
    assert isinstance(rec["deployment_names"], list)


def test_each_viewer_sees_only_theirs(fleet):
    cp, ids = fleet
    one, two = ids["vm-one"], ids["vm-two"]
    seen = {name: {a["agent_id"] for a in fleet_json(cp, c)["agents"]}
            for name, c in (("admin", ADMIN), ("tenant", TENANT),
                            ("member", MEMBER), ("stranger", STRANGER))}
    # Admins see every entry, the CP's own among them; nobody else does.
    assert seen["admin"] == {one, two, "control-plane"}
    assert seen["tenant"] == {one}
    assert seen["member"] == {two}
    assert seen["stranger"] == set()
    assert fleet_json(cp, STRANGER)["summary"]["agents"] == 0
    # The page and the fragment show the same scoping.
    for path in ("/", "/api/fleet"):
        body = get(cp.port, path, mint_session(TENANT)).body
        assert b"vm-one" in body and one.encode() in body
        assert b"vm-two" not in body and two.encode() not in body
        body = get(cp.port, path, mint_session(STRANGER)).body
        assert b"vm-one" not in body and b"vm-two" not in body
        assert b"No agents registered that you may see" in body
        assert b"control-plane" not in get(cp.port, path,
                                           mint_session(TENANT)).body
    assert b'href=/health target=_blank' in get(cp.port, "/", mint_session(ADMIN)).body
    assert get(cp.port, "/agent/control-plane", mint_session(TENANT)).status == 404
    # Detail pages: one's own, and every one for an admin.
    assert get(cp.port, f"/agent/{one}", mint_session(TENANT)).status == 200
    assert get(cp.port, f"/agent/{two}", mint_session(MEMBER)).status == 200
    for aid in (one, two):
        r = get(cp.port, f"/agent/{aid}", mint_session(ADMIN))
        assert r.status == 200 and aid.encode() in r.body


def test_not_found_is_the_same_page_for_missing_and_hidden(fleet):
    cp, ids = fleet
    s = mint_session(TENANT)
    hidden = get(cp.port, f"/agent/{ids['vm-two']}", s)
    missing = get(cp.port, "/agent/dd-dev-agent-0000000000000000", s)
    junk = get(cp.port, "/agent/%3Cscript%3E", s)
    assert hidden.status == missing.status == junk.status == 404
    assert hidden.body == missing.body == junk.body
    assert b"<h1>Not found</h1>" in hidden.body
    assert b"<title>Not found</title>" in hidden.body
    assert b"vm-two" not in hidden.body
    assert hidden.header("content-type").startswith("text/html")
    # For an admin the agent is there.
    assert get(cp.port, f"/agent/{ids['vm-two']}", mint_session(ADMIN)).status == 200


def test_pages_are_self_contained(fleet):
    cp, ids = fleet
    s = mint_session(ADMIN)
    page = get(cp.port, "/", s)
    assert page.status == 200 and page.header("cache-control") == "no-store"
    csp = page.header("content-security-policy")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    body = page.body.decode()
    assert "<title>DD Fleet</title>" in body
    assert "<div id=fleet-body data-poll-ms=2000>" in body
    assert '<script src="/static/fleet.js"></script>' in body
    assert "SIMULATED" in body
    # Nothing from anywhere else: every src and href is ours or an agent's.
    for attr in ("src=", "href="):
        for part in body.split(attr)[1:]:
            url = part.lstrip("\"'").split()[0].rstrip("\"'>")
            assert url.startswith("/") or url.startswith("http://127.0.0.1:"), url
    # The fragment is the body of the page, not a page.
    frag = get(cp.port, "/api/fleet", s, "text/html")
    assert frag.status == 200 and frag.header("vary") == "Accept"
    assert b"<html" not in frag.body and b"data-agent=" in frag.body
    assert b"<span class=\"pill status-running\">healthy</span>" in frag.body
    # The assets the page names are served.
    for asset in ("/static/fleet.js", "/static/fleet.css", "/static/dd.css"):
        assert get(cp.port, asset).status == 200, asset
    detail = get(cp.port, f"/agent/{ids['vm-one']}", s).body.decode()
    assert "<h1>vm-one</h1>" in detail and "Intel Trust Authority" in detail
    assert "Status history" in detail and "registered" in detail


def test_scrape_interval_is_a_checked_setting(ita_env):
    """DD_SCRAPE_INTERVAL (spec 2.4) sets the collector's tick: 1..3600 s."""
    import subprocess
    from conftest import BASE_ENV
    for bad in ("0", "3601", "five"):
        env = dict(os.environ, **BASE_ENV, **ita_env, DD_SCRAPE_INTERVAL=bad)
        env.pop("DD_MODE", None)
        r = subprocess.run([DD_BIN, "cp"], env=env, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and "DD_SCRAPE_INTERVAL" in r.stderr, (bad, r.stderr)
    r = subprocess.run([DD_BIN, "cp", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert "DD_SCRAPE_INTERVAL" in r.stdout + r.stderr
