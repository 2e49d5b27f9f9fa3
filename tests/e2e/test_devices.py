"""Device pairing and the agent's attested Noise identity, end to end: the
real CP and agent (simulated quotes, the local ITA), signed in through CP
tickets as the pages are. Fleet owner: org acme (4242); alice (501) is a
fleet admin, bob (77) becomes the agent's runtime tenant, mallory (666)
is merely signed in.

Spec: noise-sessions 2.5 and 3.2-3.5, http-surface 3.9 and 4.7-4.9, with
this project's fixes (owner/admin only, CSRF, atomic 0600 store, a list,
small-order keys refused, the whole key on the confirmation page)."""
import base64
import hashlib
import json
import os
import re
import stat
import shutil
import tempfile
import time
import urllib.parse

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from conftest import DD_BIN, request, wait_for
from test_agent_api import OWNER, agent_env, call, ee, oidc  # noqa: F401 (fixtures)
from test_agent_api import assert_json_answer, assert_page_headers
from test_auth import cookies_of, mint_session, session_claims, split, ticket_into_agent
import browser

NOISE_LABEL = b"devopsdefender/noise/v1"
ZERO = "00" * 32
# Curve25519 points of small order (libsodium's blocklist): anyone can
# complete a handshake "as" such a key.
LOW_ORDER = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"


def device_key():
    k = X25519PrivateKey.generate().public_key()
    return k.public_bytes(serialization.Encoding.Raw,
                          serialization.PublicFormat.Raw).hex()


@pytest.fixture
def state_dir():
    d = tempfile.mkdtemp(prefix="dd-devices-")
    yield d
    # A process of the test may still be writing here if `start` was set
    # up after this fixture's first user (pytest tears down in reverse):
    # what it adds meanwhile is not the test's concern.
    shutil.rmtree(d, ignore_errors=True)


def start_fleet(start, ita_env, oidc, ee, state_dir, **extra):
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}",
        DD_AGENT_DEVICES_PATH=os.path.join(state_dir, "data", "devices.json"),
        DD_NOISE_KEY_PATH=os.path.join(state_dir, "noise.key"), **extra))
    return cp, a


@pytest.fixture
def fleet(start, ita_env, oidc, ee, state_dir):
    return start_fleet(start, ita_env, oidc, ee, state_dir)


ALICE = dict()                                    # the admin: the defaults
BOB = dict(login="bob", user_id=77, orgs=[], is_fleet_admin=False)
MALLORY = dict(login="mallory", user_id=666, orgs=[], is_fleet_admin=False)


class Session:
    """One person signed in to the agent: its cookie and CSRF token."""

    def __init__(self, cp, agent, **claims):
        self.agent = agent
        r, _ = ticket_into_agent(cp, agent, mint_session(session_claims(**claims)))
        assert r.status == 303, r.body
        self.cookie = cookies_of(r)["dd_agent_session"]
        page = self.get(f"/admin/enroll?pubkey={device_key()}&label=x")
        m = re.search(rb'name=csrf value="([^"]+)"', page.body)
        self.csrf = m.group(1).decode() if m else ""

    def headers(self, csrf=True, **more):
        h = {"Cookie": f"dd_agent_session={self.cookie}",
             "Content-Type": "application/json",
             "Accept": "application/json"}
        if csrf:
            h["X-CSRF-Token"] = self.csrf
        h.update(more)
        return h

    def get(self, path, **more):
        return request(self.agent.port, "GET", path,
                       self.headers(csrf=False, **more))

    def pair(self, pubkey, label, csrf=True, **more):
        body = json.dumps({"pubkey": pubkey, "label": label}).encode()
        return request(self.agent.port, "POST", "/api/v1/devices",
                       self.headers(csrf, **more), body)

    def revoke(self, pubkey, csrf=True):
        return request(self.agent.port, "DELETE", f"/api/v1/devices/{pubkey}",
                       self.headers(csrf))

    def devices(self):
        r = self.get("/api/v1/devices")
        assert r.status == 200, r.body
        return {d["pubkey"]: d for d in r.json()["devices"]}


def test_pair_list_revoke_and_repair(fleet, state_dir):
    cp, a = fleet
    alice = Session(cp, a)
    assert alice.csrf
    k1, k2 = device_key(), device_key()
    before = int(time.time() * 1000)
    # Upper case in, lower case stored; the label is trimmed.
    r = alice.pair(k1.upper(), "  alice@laptop ")
    assert r.status == 201, r.body
    d = r.json()
    assert d["pubkey"] == k1 and d["label"] == "alice@laptop"
    assert before <= d["created_at_ms"] <= int(time.time() * 1000)
    assert d["paired_by"] == "alice" and d["paired_by_id"] == 501
    assert "revoked_at_ms" not in d
    assert alice.pair(k2, "phone").status == 201
    listed = alice.devices()
    assert set(listed) == {k1, k2} and listed[k1]["label"] == "alice@laptop"

    # Written atomically, 0600, pretty-printed, in key order.
    path = os.path.join(state_dir, "data", "devices.json")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert not os.path.exists(path + ".tmp")
    on_disk = json.load(open(path))
    assert [x["pubkey"] for x in on_disk["devices"]] == sorted([k1, k2])
    assert open(path).read().startswith('{\n  "devices": [\n')

    # Revoke: 200 with the time, then 404; the record stays, marked.
    r = alice.revoke(k1)
    assert r.status == 200, r.body
    assert r.json()["revoked"] == k1 and r.json()["at_ms"] >= d["created_at_ms"]
    assert alice.revoke(k1).status == 404
    assert alice.revoke(device_key()).status == 404
    assert alice.devices()[k1]["revoked_at_ms"] == r.json()["at_ms"]
    assert "revoked_at_ms" not in alice.devices()[k2]
    assert "device revoked: " + k1 in a.output()
    # Pairing a revoked key again un-revokes it (spec 3.3).
    r = alice.pair(k1, "laptop again")
    assert r.status == 201 and "revoked_at_ms" not in r.json()
    assert alice.devices()[k1]["label"] == "laptop again"


def test_the_registry_survives_a_restart(start, ita_env, oidc, ee, state_dir):
    cp, a = start_fleet(start, ita_env, oidc, ee, state_dir)
    alice = Session(cp, a)
    k1, k2 = device_key(), device_key()
    assert alice.pair(k1, "one").status == 201
    assert alice.pair(k2, "two").status == 201
    assert alice.revoke(k2).status == 200
    assert a.stop() == 0      # the fixture still checks its log afterwards
    a2 = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}",
        DD_AGENT_DEVICES_PATH=os.path.join(state_dir, "data", "devices.json"),
        DD_NOISE_KEY_PATH=os.path.join(state_dir, "noise.key")))
    assert "2 paired device(s) loaded" in a2.output()
    listed = Session(cp, a2).devices()
    assert set(listed) == {k1, k2}
    assert "revoked_at_ms" in listed[k2] and "revoked_at_ms" not in listed[k1]


def test_a_damaged_registry_stops_the_boot(ita_env, oidc, ee, state_dir):
    import subprocess
    from conftest import BASE_ENV
    path = os.path.join(state_dir, "devices.json")
    with open(path, "w") as f:
        f.write('{"devices": [{"pubkey": "%s", "label": "x", "created_at_ms": 1}]}' % ZERO)
    os.chmod(path, 0o600)
    env = dict(os.environ, **BASE_ENV)
    env.update(agent_env(ita_env, oidc, ee, DD_AGENT_DEVICES_PATH=path,
                         DD_EE_WAIT_SECS="0"))
    r = subprocess.run([DD_BIN, "agent"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert "the device registry" in r.stdout + r.stderr


def test_who_may_pair(fleet, oidc):
    cp, a = fleet
    k = device_key()
    body = json.dumps({"pubkey": k, "label": "x"}).encode()
    # Anonymous: 401 for API calls; a browser on the page is sent to sign in.
    r = request(a.port, "POST", "/api/v1/devices",
                {"Content-Type": "application/json"}, body)
    assert r.status == 401
    assert request(a.port, "GET", "/api/v1/devices",
                   {"Accept": "application/json"}).status == 401
    assert request(a.port, "DELETE", f"/api/v1/devices/{k}").status == 401
    r = request(a.port, "GET", f"/admin/enroll?pubkey={k}&label=x",
                {"Accept": "text/html"})
    assert r.status == 307
    assert r.header("location").startswith(f"http://127.0.0.1:{cp.port}/auth/agent?")
    r = request(a.port, "GET", f"/admin/enroll?pubkey={k}&label=x",
                {"Accept": "application/json"})
    assert r.status == 401

    # Signed in is not allowed: mallory is nobody's owner or admin.
    mallory = Session(cp, a, **MALLORY)
    assert mallory.pair(k, "x").status == 403
    assert mallory.get("/api/v1/devices").status == 403
    assert mallory.get(f"/admin/enroll?pubkey={k}&label=x").status == 403
    # Nor is bob, until the fleet owner makes him the runtime tenant.
    bob = Session(cp, a, **BOB)
    assert bob.pair(k, "x").status == 403
    r = call(a, "POST", "/owner", oidc.token("acme", 4242),
             {"agent_owner": "bob", "agent_owner_id": 77,
              "agent_owner_kind": "user", "claim_id": "devices"})
    assert r.status == 200, r.body
    bob = Session(cp, a, **BOB)
    assert bob.csrf
    r = bob.pair(k, "bob's laptop")
    assert r.status == 201, r.body
    assert r.json()["paired_by"] == "bob"
    assert k in bob.devices()
    # Mallory cannot revoke it either; bob can.
    mallory = Session(cp, a, **MALLORY)
    assert mallory.revoke(k).status == 403
    assert bob.revoke(k).status == 200
    # A CI token of the owner is not a person confirming a pairing.
    r = request(a.port, "POST", "/api/v1/devices",
                {"Content-Type": "application/json",
                 "Authorization": "Bearer " + oidc.token("acme", 4242)}, body)
    assert r.status in (401, 403)


def test_csrf_and_origin(fleet):
    cp, a = fleet
    alice = Session(cp, a)
    k = device_key()
    r = alice.pair(k, "x", csrf=False)
    assert r.status == 403 and r.json()["code"] == "csrf"
    r = alice.pair(k, "x", csrf=False, **{"X-CSRF-Token": "A" * 43})
    assert r.status == 403 and r.json()["code"] == "csrf"
    # Another session's token does not fit this one.
    other = Session(cp, a, login="carol", user_id=502)
    r = alice.pair(k, "x", csrf=False, **{"X-CSRF-Token": other.csrf})
    assert r.status == 403
    # The right token from a foreign page.
    r = alice.pair(k, "x", Origin="https://evil.example")
    assert r.status == 403
    r = alice.revoke(k, csrf=False)
    assert r.status == 403
    assert k not in alice.devices()
    # The page's own form: the token as a field, then off to the list.
    form = urllib.parse.urlencode({"csrf": alice.csrf, "pubkey": k,
                                   "label": "from the form"}).encode()
    h = alice.headers(csrf=False)
    h["Content-Type"] = "application/x-www-form-urlencoded"
    r = request(a.port, "POST", "/api/v1/devices", h, form)
    assert r.status == 303 and r.header("location") == "/api/v1/devices"
    assert alice.devices()[k]["label"] == "from the form"
    form = urllib.parse.urlencode({"pubkey": k, "label": "no token"}).encode()
    assert request(a.port, "POST", "/api/v1/devices", h, form).status == 403
    # The list page's Revoke button: the same rules, then back to the list.
    r = request(a.port, "POST", f"/api/v1/devices/{k}/revoke", h,
                urllib.parse.urlencode({"csrf": other.csrf}).encode())
    assert r.status == 403
    r = request(a.port, "POST", f"/api/v1/devices/{k}/revoke",
                dict(h, Origin="https://evil.example"),
                urllib.parse.urlencode({"csrf": alice.csrf}).encode())
    assert r.status == 403
    assert "revoked_at_ms" not in alice.devices()[k]
    r = request(a.port, "POST", f"/api/v1/devices/{k}/revoke", h,
                urllib.parse.urlencode({"csrf": alice.csrf}).encode())
    assert r.status == 303 and r.header("location") == "/api/v1/devices"
    assert "revoked_at_ms" in alice.devices()[k]
    r = request(a.port, "POST", f"/api/v1/devices/{k}/revoke", h,
                urllib.parse.urlencode({"csrf": alice.csrf}).encode())
    assert r.status == 404 and b"Not revoked" in r.body


def test_bad_keys_and_labels_are_400(fleet):
    cp, a = fleet
    alice = Session(cp, a)
    k = device_key()
    for pub in (k[:63], k + "0", "g" * 64, "", ZERO, LOW_ORDER,
                "ec" + "ff" * 30 + "7f"):               # p - 1
        r = alice.pair(pub, "x")
        assert r.status == 400, (pub, r.body)
        assert r.json()["code"] == "bad_request"
    for label in ("", "   ", "x" * 129, "a\nb"):
        assert alice.pair(k, label).status == 400, label
    assert alice.pair(k, "x" * 128).status == 201
    for body in (b"", b"not json", b"[]", b'{"pubkey": "%s"}' % k.encode(),
                 b'{"pubkey": 1, "label": "x"}'):
        r = request(a.port, "POST", "/api/v1/devices", alice.headers(), body)
        assert r.status == 400, body
    assert alice.revoke("nothex").status == 400
    assert alice.revoke(LOW_ORDER).status == 400
    assert set(alice.devices()) == {k}


def test_enrollment_page(fleet):
    cp, a = fleet
    alice = Session(cp, a)
    k = device_key()
    label = urllib.parse.quote("<b>alice</b> laptop")
    r = alice.get(f"/admin/enroll?pubkey={k.upper()}&label={label}",
                  Accept="text/html")
    assert r.status == 200 and r.header("content-type").startswith("text/html")
    page = r.body.decode()
    # The whole key, in groups of four, not just its first 16 characters.
    groups = " ".join(k[i:i + 4] for i in range(0, 64, 4))
    text = re.sub(r"<br>", " ", page)
    assert groups in text
    assert "&lt;b&gt;alice&lt;/b&gt; laptop" in page and "<b>alice</b>" not in page
    assert 'action=/api/v1/devices' in page and f'value="{k}"' in page
    assert "<script" not in page
    for query, title in ((f"pubkey={k[:10]}&label=x", "Invalid pubkey"),
                         (f"pubkey={ZERO}&label=x", "Invalid pubkey"),
                         (f"label=x", "Invalid pubkey"),
                         (f"pubkey={k}&label=%20", "Invalid label"),
                         (f"pubkey={k}&label=" + "x" * 129, "Invalid label")):
        r = alice.get("/admin/enroll?" + query, Accept="text/html")
        assert r.status == 200 and title.encode() in r.body, query
    # Nothing was paired by looking.
    assert alice.devices() == {}


def test_every_page_carries_the_page_headers(fleet):
    """Issue 7: the enrollment page, its refusal cards, the device list
    and the form's error pages all carry the page policy; the same
    routes' JSON answers and the refusals (JSON) do not."""
    cp, a = fleet
    alice = Session(cp, a)
    k, other = device_key(), device_key()
    for query in (f"pubkey={k}&label=x", f"pubkey={k[:10]}&label=x",
                  f"pubkey={k}&label=%20"):
        r = alice.get("/admin/enroll?" + query, Accept="text/html")
        assert r.status == 200, query
        assert_page_headers(r)
    r = alice.pair(k, "laptop")
    assert r.status == 201
    assert_json_answer(r)
    r = alice.get("/api/v1/devices", Accept="text/html")
    assert r.status == 200 and b"laptop" in r.body and b">Revoke<" in r.body
    assert_page_headers(r)
    assert_json_answer(alice.get("/api/v1/devices"))
    # The forms' errors are pages (400, 404); the JSON API's stay JSON.
    h = dict(alice.headers(csrf=False),
             **{"Content-Type": "application/x-www-form-urlencoded"})
    form = urllib.parse.urlencode({"csrf": alice.csrf, "pubkey": "nothex",
                                   "label": "x"}).encode()
    r = request(a.port, "POST", "/api/v1/devices", h, form)
    assert r.status == 400 and b"Not paired" in r.body
    assert_page_headers(r)
    r = request(a.port, "POST", f"/api/v1/devices/{other}/revoke", h,
                urllib.parse.urlencode({"csrf": alice.csrf}).encode())
    assert r.status == 404 and b"Not revoked" in r.body
    assert_page_headers(r)
    r = alice.revoke(other)
    assert r.status == 404
    assert_json_answer(r)
    r = alice.revoke(k)
    assert r.status == 200
    assert_json_answer(r)
    # Refusals are JSON even to a browser: there is no HTML 401/403.
    mallory = Session(cp, a, **MALLORY)
    r = mallory.get(f"/admin/enroll?pubkey={k}&label=x", Accept="text/html")
    assert r.status == 403
    assert_json_answer(r)
    r = request(a.port, "GET", "/api/v1/devices", {"Accept": "application/json"})
    assert r.status == 401
    assert_json_answer(r)


def quote_report_data(quote):
    """REPORTDATA of a v4 TDX quote: 48-byte header, then the TD body,
    whose report_data is at offset 520, 64 bytes."""
    version = int.from_bytes(quote[0:2], "little")
    tee_type = int.from_bytes(quote[4:8], "little")
    assert version == 4 and tee_type == 0x81
    return quote[48 + 520:48 + 520 + 64]


def jwt_claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_health_carries_the_noise_binding(fleet, state_dir):
    cp, a = fleet
    n = wait_for(lambda: (lambda n: n if n["quote_b64"] and n["ita_token"] else None)(
        request(a.port, "GET", "/health").json()["noise"]), what="the Noise quote")
    # The key is the one in the agent's key file.
    priv = open(os.path.join(state_dir, "noise.key"), "rb").read()
    pub = X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert n["pubkey_hex"] == pub.hex()
    assert n["binding"] == NOISE_LABEL.decode()
    nonce = bytes.fromhex(n["nonce_hex"])
    assert len(nonce) == 32
    quote = base64.b64decode(n["quote_b64"], validate=True)
    want = hashlib.sha512(NOISE_LABEL + nonce + pub).digest()
    assert quote_report_data(quote) == want
    # The token speaks for the same report data.
    assert jwt_claims(n["ita_token"])["tdx_report_data"] == want.hex()
    # Another key, or another nonce, does not match: the check is real.
    assert hashlib.sha512(NOISE_LABEL + nonce + bytes(32)).digest() != want
    assert hashlib.sha512(b"devopsdefender/register/v1" + nonce + pub).digest() != want
    # One quote per process: every request serves the same one.
    time.sleep(1.1)
    again = request(a.port, "GET", "/health").json()["noise"]
    assert again["quote_b64"] == n["quote_b64"] and again["nonce_hex"] == n["nonce_hex"]
    # The top-level token is the registration one, not this.
    assert request(a.port, "GET", "/health").json()["ita_token"] != n["ita_token"]


def cp_get(cp, path, session=None, accept="text/html"):
    h = {"Accept": accept}
    if session:
        h["Cookie"] = f"dd_session={session}"
    return request(cp.port, "GET", path, h)


def wait_healthy(cp, agent):
    """Until the collector has found the agent healthy (the CP's own
    control-plane entry is healthy too, so ask for the agent's record)."""
    def healthy():
        r = request(cp.port, "GET", "/api/agents", {"Accept": "application/json"})
        if r.status != 200:
            return False
        body = r.json()
        agents = body.get("agents", body) if isinstance(body, dict) else body
        return any(x.get("agent_id") != "control-plane" and x.get("status") == "healthy"
                   for x in agents)
    wait_for(healthy, timeout=30, what="the collector to find the agent healthy")


def test_cp_enroll_sends_the_browser_to_an_agent(fleet):
    cp, a = fleet
    admin = mint_session(session_claims())
    k = device_key()
    q = f"/admin/enroll?pubkey={k.upper()}&label=" + urllib.parse.quote(" my laptop ")
    # Anonymous: a browser signs in first; an API caller gets 401.
    r = cp_get(cp, q)
    assert r.status == 307 and "return_to=" in r.header("location")
    assert cp_get(cp, q, accept="application/json").status == 401
    # Validation comes first and answers with a page.
    r = cp_get(cp, f"/admin/enroll?pubkey={LOW_ORDER}&label=x", admin)
    assert r.status == 200 and b"Invalid pubkey" in r.body
    r = cp_get(cp, f"/admin/enroll?pubkey={k}&label=%20", admin)
    assert r.status == 200 and b"Invalid label" in r.body
    wait_healthy(cp, a)
    r = cp_get(cp, q, admin)
    assert r.status == 307, r.body
    port, path = split(r.header("location"))
    assert port == a.port
    assert path == f"/admin/enroll?pubkey={k}&label=my%20laptop"
    # A native bearer is no browser confirming anything (spec 3.7): the
    # same session as a bearer is refused, even though the CP knows it.
    r = request(cp.port, "GET", q, {"Authorization": f"Bearer {admin}",
                                    "Accept": "text/html"})
    assert r.status == 401, r.body
    # A named agent must be one of the eligible ones.
    r = cp_get(cp, q + "&agent=nope", admin)
    assert r.status == 200 and b"No read-write agent available" in r.body
    # Mallory owns no agent: nowhere to send her.
    mallory = mint_session(session_claims(**MALLORY))
    r = cp_get(cp, q, mallory)
    assert r.status == 200 and b"No read-write agent available" in r.body
    # The CP keeps nothing: the agent has no device yet.
    assert Session(cp, a).devices() == {}


def test_cp_enroll_without_a_healthy_agent(cp):
    admin = mint_session(session_claims())
    r = cp_get(cp, f"/admin/enroll?pubkey={device_key()}&label=x", admin)
    assert r.status == 200 and b"No read-write agent available" in r.body


def launch_chromium():
    """A headless Chromium; returns (process, profile, page WebSocket URL).
    browser.py's visit() only loads a page; this test also clicks."""
    import shutil
    import subprocess
    import urllib.request
    profile = tempfile.mkdtemp(prefix="dd-chromium-")
    proc = subprocess.Popen(
        [browser.CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)

    port_file = os.path.join(profile, "DevToolsActivePort")
    try:
        wait_for(lambda: os.path.exists(port_file) and os.path.getsize(port_file) > 0,
                 timeout=30, what="chromium")
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/json/list", timeout=10))
        ws = [t for t in targets if t["type"] == "page"][0]["webSocketDebuggerUrl"]
    except BaseException:
        stop()
        raise
    return stop, ws


async def click_through(ws_url, url, cookie_url, cookie, clicks):
    """Loads url with the CP cookie and reads the page; then for each
    selector clicks that element as a person would and reads the page
    that follows. Returns the pages read and the CDP page."""
    import asyncio
    import websockets

    async def read(page):
        r = await page.call("Runtime.evaluate", returnByValue=True,
                            expression="JSON.stringify({url: location.href,"
                            " text: document.body.innerText,"
                            " sheets: document.styleSheets.length})")
        return json.loads(r["result"]["value"])

    async with websockets.connect(ws_url, max_size=None) as ws:
        page = browser.Page(ws)
        for domain in ("Network", "Page", "Runtime", "Log"):
            await page.call(f"{domain}.enable")
        await page.call("Network.setCookie", name="dd_session", value=cookie,
                        url=cookie_url)
        await page.call("Page.navigate", url=url)
        await page.pump_until_loaded()
        pages = [await read(page)]
        for sel in clicks:
            page.loaded.clear()
            await page.call("Runtime.evaluate",
                            expression=f"document.querySelector({json.dumps(sel)}).click()")
            await page.pump_until_loaded()
            await asyncio.sleep(0)
            pages.append(await read(page))
        return pages, page


@pytest.mark.skipif(not browser.CHROMIUM, reason="chromium is not installed")
def test_pairing_in_chromium(fleet):
    """A person's path: the link `client pair` prints, on the CP, signed
    in there; the CP sends the browser to the agent, the agent to the CP
    for a ticket and back; the person reads the key and confirms; the
    device is then in the agent's list, whose Revoke button revokes it."""
    import asyncio
    cp, a = fleet
    wait_healthy(cp, a)
    admin = mint_session(session_claims())
    k = device_key()
    cp_base, agent_base = f"http://127.0.0.1:{cp.port}", f"http://127.0.0.1:{a.port}"
    url = f"{cp_base}/admin/enroll?pubkey={k}&label=" + urllib.parse.quote("alice's laptop")
    stop, ws = launch_chromium()
    try:
        (first, after, revoked), page = asyncio.run(click_through(
            ws, url, cp_base + "/", admin,
            ["#confirm", "form[action$='/revoke'] button"]))
    finally:
        stop()
    assert first["url"].startswith(agent_base + "/admin/enroll?"), first["url"]
    assert "Pair this device?" in first["text"] and "alice's laptop" in first["text"]
    assert " ".join(k[i:i + 4] for i in range(0, 32, 4)) in first["text"]
    assert first["sheets"] == 1
    assert after["url"] == agent_base + "/api/v1/devices"
    assert "Paired devices" in after["text"] and "alice's laptop" in after["text"]
    assert k in after["text"] and "trusted" in after["text"]
    # Its Revoke button, clicked: back to the list, now revoked.
    assert revoked["url"] == agent_base + "/api/v1/devices"
    assert "revoked" in revoked["text"] and "trusted" not in revoked["text"]
    assert page.errors == [] and page.console == []
    assert all(u.startswith((cp_base, agent_base)) for u in page.requests), page.requests
    d = Session(cp, a).devices()[k]
    assert d["paired_by"] == "alice" and d["revoked_at_ms"] > d["created_at_ms"] - 1


def test_the_noise_quote_through_configfs_tsm(start, ita_env, oidc, ee):
    """The real provider path: the agent asks configfs-tsm (a stand-in
    playing the kernel's protocol back with a genuine quote layout) for
    the quote, and REPORTDATA sits where a client reads it."""
    from tsm_standin import TsmStandin
    s = TsmStandin().start()
    try:
        a = start([DD_BIN, "agent"], agent_env(
            ita_env, oidc, ee, DD_QUOTE_PROVIDER="tsm", DD_TSM_ROOT=s.root))
        n = wait_for(lambda: (lambda n: n if n["quote_b64"] else None)(
            request(a.port, "GET", "/health").json()["noise"]), what="the Noise quote")
        quote = base64.b64decode(n["quote_b64"], validate=True)
        want = hashlib.sha512(NOISE_LABEL + bytes.fromhex(n["nonce_hex"])
                              + bytes.fromhex(n["pubkey_hex"])).digest()
        assert quote_report_data(quote) == want
        assert s.served >= 1
        assert not s.errors, s.errors
    finally:
        s.stop()


def test_without_quotes_the_bundle_says_so_and_the_agent_serves(start, ita_env, oidc, ee,
                                                                state_dir):
    missing = os.path.join(state_dir, "no-tsm-here")
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_QUOTE_PROVIDER="tsm", DD_TSM_ROOT=missing))
    wait_for(lambda: "quoting the Noise key failed" in a.output(), what="the retry")
    n = request(a.port, "GET", "/health").json()["noise"]
    assert len(n["pubkey_hex"]) == 64
    assert n["quote_b64"] == "" and n["nonce_hex"] == "" and n["ita_token"] == ""
    assert n["binding"] == NOISE_LABEL.decode()


def test_the_registry_is_bounded(start, ita_env, oidc, ee, state_dir):
    cp, a = start_fleet(start, ita_env, oidc, ee, state_dir, DD_AGENT_MAX_DEVICES="2")
    alice = Session(cp, a)
    k1, k2, k3 = device_key(), device_key(), device_key()
    assert alice.pair(k1, "one").status == 201
    assert alice.pair(k2, "two").status == 201
    assert alice.revoke(k2).status == 200       # revoked records still count
    r = alice.pair(k3, "three")
    assert r.status == 409 and r.json()["code"] == "too_many_devices"
    assert alice.pair(k1, "one, renamed").status == 201   # replacing needs no room
    assert alice.pair(k2, "two again").status == 201      # nor does re-pairing
    assert set(alice.devices()) == {k1, k2}
