"""Browser sign-in end to end: the real CP and agent against a fake GitHub.

GitHub sign-in through the CP's broker (state, nonce cookie, code exchange,
user lookup, classification), the refusals of every step, sessions as the
CP issues them and as it refuses them, dev sign-in, the device flow, and
signing in to an agent with a CP ticket (the agent holds no shared
secret). The fleet here is org "acme" (id 4242): its public members are
fleet admins.
"""
import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse

import pytest

from conftest import BASE_ENV, DD_BIN, request
from fake_github import FakeGitHub

OWNER = {"DD_OWNER": "acme", "DD_OWNER_ID": "4242", "DD_OWNER_KIND": "org"}
# Dev sign-in's code for the CPs here (`devopsdefender dev` makes one per run).
DEV_CODE = "e2e-dev-sign-in-code_0123456789"


@pytest.fixture
def gh():
    g = FakeGitHub().start()
    g.add_org("acme", 4242)
    g.add_user("alice", 501)      # public member of acme: a fleet admin
    g.add_member("acme", "alice")
    g.add_user("mallory", 666)    # a GitHub user with no ties to the fleet
    yield g
    g.stop()


@pytest.fixture
def fleet(start, ita_env, gh):
    env = dict(ita_env, **OWNER, DD_GITHUB_OAUTH_URL=gh.url,
               DD_GITHUB_API_URL=gh.url, DD_GITHUB_CLIENT_ID=gh.client_id,
               DD_GITHUB_CLIENT_SECRET=gh.client_secret,
               DD_DEV_SIGNIN_CODE=DEV_CODE)
    cp = start([DD_BIN, "cp"], env)
    agent = start([DD_BIN, "agent"], dict(
        ita_env, **OWNER, DD_API_PORT="0",
        DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    return cp, agent


def cookies_of(resp):
    out = {}
    for k, v in resp.headers:
        if k == "set-cookie":
            name, _, rest = v.partition("=")
            out[name] = rest.split(";", 1)[0]
    return out


def split(url):
    u = urllib.parse.urlsplit(url)
    return u.port, u.path + ("?" + u.query if u.query else "")


def get(port, path, cookies=None, headers=None):
    h = dict(headers or {})
    if cookies:
        h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return request(port, "GET", path, h)


def github_sign_in(cp, login, gh, return_path="/auth/me"):
    """Runs start -> fake GitHub -> callback; returns (callback response,
    the nonce cookie, the callback path)."""
    back = f"http://127.0.0.1:{cp.port}{return_path}"
    r = get(cp.port, "/auth/github/start?return_to=" + urllib.parse.quote(back, ""))
    assert r.status == 307, r.body
    nonce = cookies_of(r)["dd_oauth_nonce"]
    gh_port, gh_path = split(r.header("location"))
    assert gh_path.startswith("/login/oauth/authorize?")
    r = get(gh_port, gh_path + "&login=" + login)
    assert r.status == 302, r.body
    _, cb_path = split(r.header("location"))
    assert cb_path.startswith("/auth/github/callback?")
    r = get(cp.port, cb_path, {"dd_oauth_nonce": nonce})
    return r, nonce, cb_path


def test_github_sign_in_admin_and_plain_user(fleet, gh):
    cp, _ = fleet
    r, _, _ = github_sign_in(cp, "alice", gh)
    assert r.status == 307, r.body
    assert r.header("location") == f"http://127.0.0.1:{cp.port}/auth/me"
    c = cookies_of(r)
    assert c["dd_oauth_nonce"] == ""          # cleared
    set_cookie = [v for k, v in r.headers if k == "set-cookie" and
                  v.startswith("dd_session=")][0]
    for attr in ("HttpOnly", "SameSite=Lax", "Max-Age=604800", "Path=/"):
        assert attr in set_cookie
    me = get(cp.port, "/auth/me", {"dd_session": c["dd_session"]}).json()
    assert me["login"] == "alice" and me["user_id"] == 501
    assert me["is_fleet_admin"] is True and me["dev"] is False
    assert "acme" in me["orgs"]
    # Someone GitHub knows but the fleet does not: signed in, not admin.
    r, _, _ = github_sign_in(cp, "mallory", gh)
    m = cookies_of(r)["dd_session"]
    me = get(cp.port, "/auth/me", {"dd_session": m}).json()
    assert me["login"] == "mallory" and me["is_fleet_admin"] is False


def test_callback_refusals(fleet, gh):
    cp, _ = fleet
    r, nonce, cb = github_sign_in(cp, "alice", gh)
    assert r.status == 307
    # The same state again: already used.
    r = get(cp.port, cb, {"dd_oauth_nonce": nonce})
    assert r.status == 401 and r.json()["code"] == "state_replayed"
    # A fresh start, then tampering with each piece.
    back = urllib.parse.quote(f"http://127.0.0.1:{cp.port}/", "")
    r = get(cp.port, "/auth/github/start?return_to=" + back)
    nonce = cookies_of(r)["dd_oauth_nonce"]
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(
        r.header("location")).query)["state"][0]
    payload, mac = state.split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    r = get(cp.port, "/auth/github/callback?code=x&state=" + forged,
            {"dd_oauth_nonce": nonce})
    assert r.status == 401 and r.json()["code"] == "bad_state"
    r = get(cp.port, "/auth/github/callback?code=x&state=" + state)
    assert r.status == 401 and r.json()["code"] == "no_nonce"
    r = get(cp.port, "/auth/github/callback?code=x&state=" + state,
            {"dd_oauth_nonce": "A" * 43})
    assert r.status == 401 and r.json()["code"] == "bad_nonce"
    r = get(cp.port, "/auth/github/callback?state=" + state,
            {"dd_oauth_nonce": nonce})
    assert r.status == 400
    # A code GitHub never issued: GitHub refuses, so do we.
    r = get(cp.port, "/auth/github/callback?code=bogus&state=" + state,
            {"dd_oauth_nonce": nonce})
    assert r.status == 401 and r.json()["code"] == "github_refused"


def test_start_refuses_foreign_return_to(fleet):
    cp, _ = fleet
    for bad in ("https://evil.example/", "//evil.example/", "/relative",
                "http://10.1.2.3/", "javascript:alert(1)"):
        r = get(cp.port, "/auth/github/start?return_to=" + urllib.parse.quote(bad, ""))
        assert r.status == 400 and r.json()["code"] == "bad_return_to", bad
    r = get(cp.port, "/auth/github/start")
    assert r.status == 400


def test_github_outage_is_a_clear_502(fleet, gh):
    cp, _ = fleet
    gh.fail(502, count=5, path="/login/oauth/access_token")
    r, _, _ = github_sign_in(cp, "alice", gh)
    assert r.status in (401, 502)
    assert r.json()["code"] in ("github_failed", "github_refused")


def mint_session(claims):
    """A session token made the way the spec defines it, with the test's
    cookie secret: how an attacker who knew the secret would forge one."""
    secret = BASE_ENV["DD_AUTH_COOKIE_SECRET"].encode()
    key = hmac.new(secret, b"devopsdefender/session/v1", hashlib.sha256).digest()
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":"))
                                    .encode()).rstrip(b"=")
    mac = base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256)
                                   .digest()).rstrip(b"=")
    return (body + b"." + mac).decode()


def session_claims(**over):
    c = {"login": "alice", "user_id": 501, "exp": int(time.time()) + 3600,
         "owner_name": "acme", "owner_id": 4242, "owner_kind": "org",
         "orgs": ["acme"], "is_fleet_admin": True, "dev": False}
    c.update(over)
    return c


def test_sessions_the_cp_refuses(fleet):
    cp, _ = fleet
    good = mint_session(session_claims())
    assert get(cp.port, "/auth/me", {"dd_session": good}).status == 200
    cases = {
        "expired": mint_session(session_claims(exp=int(time.time()) - 1)),
        "other fleet": mint_session(session_claims(owner_id=4243)),
        "forged mac": good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:],
        "garbage": "not-a-token",
        "empty": "",
    }
    for name, tok in cases.items():
        r = get(cp.port, "/auth/me", {"dd_session": tok})
        assert r.status == 401, name
        # A browser is sent to sign in again instead.
        r = get(cp.port, "/auth/agent?return_to=x", {"dd_session": tok},
                {"Accept": "text/html"})
        assert r.status == 307 and "/auth/github/start?return_to=" in r.header("location"), name


def test_logout_needs_csrf_with_a_cookie(fleet):
    cp, _ = fleet
    tok = mint_session(session_claims())
    r = request(cp.port, "POST", "/auth/logout",
                {"Cookie": f"dd_session={tok}"})
    assert r.status == 403 and r.json()["code"] == "csrf"
    r = request(cp.port, "POST", "/auth/logout",
                {"Origin": "https://evil.example"})
    assert r.status == 403
    r = request(cp.port, "POST", "/auth/logout")
    assert r.status == 200
    assert cookies_of(r)["dd_session"] == ""


def ticket_into_agent(cp, agent, session, path="/"):
    back = urllib.parse.quote(f"http://127.0.0.1:{agent.port}{path}", "")
    r = get(cp.port, "/auth/agent?return_to=" + back, {"dd_session": session})
    assert r.status == 307, r.body
    port, tpath = split(r.header("location"))
    assert port == agent.port and tpath.startswith("/auth/ticket?ticket=")
    r = get(agent.port, tpath)
    return r, tpath


def test_agent_sign_in_by_ticket(fleet):
    cp, agent = fleet
    # Anonymous browser on the agent: off to the CP for a ticket.
    r = get(agent.port, "/", headers={"Accept": "text/html"})
    assert r.status == 307
    assert r.header("location").startswith(
        f"http://127.0.0.1:{cp.port}/auth/agent?return_to=")
    admin = mint_session(session_claims())
    r, tpath = ticket_into_agent(cp, agent, admin)
    assert r.status == 303 and r.header("location") == "/"
    ac = cookies_of(r)["dd_agent_session"]
    page = get(agent.port, "/", {"dd_agent_session": ac})
    assert page.status == 200 and b"alice" in page.body
    assert b"fleet admin" in page.body and b"SIMULATED" in page.body
    # Tickets are single-use, and the CP's own cookie means nothing here.
    assert get(agent.port, tpath).status == 401
    r = get(agent.port, "/", {"dd_session": admin}, {"Accept": "application/json"})
    assert r.status == 401
    # Signed in is not allowed: a user who is not admin nor tenant.
    nobody = mint_session(session_claims(login="mallory", user_id=666,
                                         orgs=[], is_fleet_admin=False))
    r, _ = ticket_into_agent(cp, agent, nobody)
    mc = cookies_of(r)["dd_agent_session"]
    r = get(agent.port, "/", {"dd_agent_session": mc})
    assert r.status == 403 and b"mallory" in r.body


def test_tickets_that_agents_refuse(fleet):
    cp, agent = fleet
    admin = mint_session(session_claims())
    # A ticket for another agent's origin is not for this one.
    back = urllib.parse.quote("http://127.0.0.1:1/", "")
    r = get(cp.port, "/auth/agent?return_to=" + back, {"dd_session": admin})
    tpath = split(r.header("location"))[1]
    r = get(agent.port, tpath)
    assert r.status == 401 and r.json()["code"] == "bad_ticket"
    # Tampered, and missing.
    r, tpath = ticket_into_agent(cp, agent, admin)
    t = re.search(r"ticket=([^&]+)", tpath).group(1)
    bad = t[:-4] + ("AAAA" if t[-4:] != "AAAA" else "BBBB")
    assert get(agent.port, tpath.replace(t, bad)).status == 401
    assert get(agent.port, "/auth/ticket").status == 400
    # next= may only be a local path.
    r = get(cp.port, "/auth/agent?return_to=" + urllib.parse.quote(
        f"http://127.0.0.1:{agent.port}/", ""), {"dd_session": admin})
    tpath = split(r.header("location"))[1].replace("next=%2F", "next=%2F%2Fevil.example")
    r = get(agent.port, tpath)
    assert r.status == 303 and r.header("location") == "/"


def test_dev_sign_in(fleet):
    cp, _ = fleet
    r = get(cp.port, "/auth/dev")
    assert r.status == 200 and b"DEVELOPMENT" in r.body
    form = f"code={DEV_CODE}&login=devvy&admin=1".encode()
    r = request(cp.port, "POST", "/auth/dev",
                {"Content-Type": "application/x-www-form-urlencoded",
                 "Origin": f"http://127.0.0.1:{cp.port}"}, form)
    assert r.status == 303
    me = get(cp.port, "/auth/me", {"dd_session": cookies_of(r)["dd_session"]}).json()
    assert me["login"] == "devvy" and me["dev"] is True and me["is_fleet_admin"]
    r = request(cp.port, "POST", "/auth/dev",
                {"Content-Type": "application/x-www-form-urlencoded"},
                f"code={DEV_CODE}&login=-bad-".encode())
    assert r.status == 400


def test_device_flow(fleet, gh):
    cp, _ = fleet
    gh.device_interval = 1
    r = request(cp.port, "POST", "/auth/device/start")
    assert r.status == 200, r.body
    d = r.json()
    assert d["user_code"] and d["device_code"]
    poll = json.dumps({"device_code": d["device_code"]}).encode()
    time.sleep(d["interval"] + 0.2)
    r = request(cp.port, "POST", "/auth/device/poll",
                {"Content-Type": "application/json"}, poll)
    assert r.status == 202 and r.json()["message"] == "authorization_pending"
    gh.approve_device(d["user_code"], "alice")
    deadline = time.monotonic() + 15
    while True:
        # Faster than the interval would earn a slow_down, as on GitHub.
        time.sleep(d["interval"] + 0.2)
        r = request(cp.port, "POST", "/auth/device/poll",
                    {"Content-Type": "application/json"}, poll)
        if r.status != 202 or time.monotonic() > deadline:
            break
    assert r.status == 200, r.body
    tok = r.json()["token"]
    # The bearer works where the spec accepts it, without a cookie.
    me = request(cp.port, "GET", "/auth/me", {"Authorization": f"Bearer {tok}"})
    assert me.status == 200 and me.json()["login"] == "alice"
    r = request(cp.port, "POST", "/auth/device/poll",
                {"Content-Type": "application/json"}, b"{}")
    assert r.status == 400
