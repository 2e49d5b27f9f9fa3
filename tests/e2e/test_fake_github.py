"""Self-tests of the fake GitHub (fake_github.py), so that a sign-in test
failing further on can be trusted to be the control plane's fault.

Plain HTTP with urllib (redirects not followed), in process and once
standalone.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from fake_github import DEVICE_GRANT, FakeGitHub

HERE = os.path.dirname(os.path.abspath(__file__))
CALLBACK = "https://cp.example.com/auth/callback"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def call(url, method="GET", body=None, headers=None, form=False):
    """(status, headers, body bytes); JSON bodies for dicts."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers.setdefault("Content-Type",
                               "application/x-www-form-urlencoded")
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=headers)
    try:
        with _opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def jcall(*args, **kwargs):
    status, headers, body = call(*args, **kwargs)
    return status, headers, (json.loads(body) if body else None)


@pytest.fixture
def gh():
    g = FakeGitHub(callback_url=CALLBACK, device_interval=1).start()
    yield g
    g.stop()


def authorize(gh, **params):
    q = {"client_id": gh.client_id, "redirect_uri": CALLBACK,
         "state": "st-1", "scope": "read:org"}
    q.update(params)
    q = {k: v for k, v in q.items() if v is not None}
    status, headers, _ = call(f"{gh.url}/login/oauth/authorize?"
                              + urllib.parse.urlencode(q))
    loc = headers.get("Location")
    return status, (dict(urllib.parse.parse_qsl(
        urllib.parse.urlsplit(loc).query)) if loc else {}), loc


def exchange(gh, code, secret=None, redirect_uri=CALLBACK):
    return jcall(f"{gh.url}/login/oauth/access_token", "POST", {
        "client_id": gh.client_id,
        "client_secret": secret or gh.client_secret, "code": code,
        "redirect_uri": redirect_uri}, {"Accept": "application/json"})[2]


def api(gh, path, token=None):
    h = {"Accept": "application/vnd.github+json",
         "User-Agent": "devopsdefender"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return jcall(gh.url + path, headers=h)


def test_web_flow_end_to_end(gh):
    uid = gh.add_user("Octo-Cat", 101)
    gh.add_org("Acme", 4242)
    gh.add_org("secret-club")
    gh.add_member("acme", "octo-cat")
    gh.add_member("secret-club", "Octo-Cat", public=False)
    rid = gh.add_repo("Acme/fleet", collaborators={"octo-cat": "push"})
    gh.sign_in_as("octo-cat")
    status, q, loc = authorize(gh)
    assert status == 302 and loc.startswith(CALLBACK + "?")
    assert q["state"] == "st-1" and len(q["code"]) == 20
    tok = exchange(gh, q["code"])
    assert tok["token_type"] == "bearer" and tok["scope"] == "read:org"
    assert tok["access_token"].startswith("gho_")
    t = tok["access_token"]
    status, _, user = api(gh, "/user", t)
    assert status == 200 and user["login"] == "Octo-Cat" and user["id"] == uid
    status, _, orgs = api(gh, "/user/orgs?per_page=100", t)
    assert sorted(o["login"] for o in orgs) == ["Acme", "secret-club"]
    assert api(gh, "/orgs/ACME", t)[2]["id"] == 4242
    assert api(gh, "/orgs/acme/public_members/Octo-Cat", t)[0] == 204
    assert api(gh, "/orgs/secret-club/public_members/octo-cat", t)[0] == 404
    status, _, repo = api(gh, "/repos/acme/FLEET", t)
    assert status == 200 and repo["id"] == rid
    assert repo["full_name"] == "Acme/fleet"
    assert repo["permissions"] == {"pull": True, "triage": True,
                                   "push": True, "maintain": False,
                                   "admin": False}
    assert repo["owner"] == {"login": "Acme", "id": 4242,
                             "type": "Organization"}
    last = gh.last_request("user")
    assert last["headers"]["authorization"] == f"Bearer {t}"
    s = gh.stats()
    assert s["codes_issued"] == 1 and s["tokens_issued"] == 1
    assert s["user"] == 1 and s["public_member"] == 2


def test_codes_are_single_use_and_checked(gh):
    gh.add_user("alice")   # the only user signs in by default
    _, q, _ = authorize(gh)
    assert exchange(gh, q["code"], secret="wrong")["error"] == \
        "incorrect_client_credentials"
    bad = exchange(gh, q["code"], redirect_uri=CALLBACK + "/other")
    assert bad["error"] == "redirect_uri_mismatch"
    assert "access_token" in exchange(gh, q["code"])
    again = exchange(gh, q["code"])
    assert again["error"] == "bad_verification_code"
    assert again["error_description"] == \
        "The code passed is incorrect or expired."
    assert exchange(gh, "nope")["error"] == "bad_verification_code"
    assert gh.stats()["token_errors"] == 4


def test_authorize_validates_its_parameters(gh):
    gh.add_user("alice")
    gh.add_user("bob")
    assert authorize(gh, client_id="unknown")[0] == 404
    assert authorize(gh, state=None)[0] == 400
    # Off-site redirect: GitHub sends the browser to the registered URL.
    status, q, loc = authorize(gh, redirect_uri="https://evil.example/cb")
    assert status == 302 and loc.startswith(CALLBACK + "?")
    assert q["error"] == "redirect_uri_mismatch" and "code" not in q
    assert authorize(gh, redirect_uri=CALLBACK + "/deeper")[0] == 401
    # Two users and nobody chosen: no one is signed in.
    assert authorize(gh)[0] == 401
    status, q, _ = authorize(gh, login="bob")
    tok = exchange(gh, q["code"])["access_token"]
    assert api(gh, "/user", tok)[2]["login"] == "bob"
    gh.deny_next()
    status, q, _ = authorize(gh, login="bob")
    assert status == 302 and q["error"] == "access_denied"
    assert q["state"] == "st-1"


def test_form_encoded_exchange_and_reply(gh):
    gh.add_user("alice")
    _, q, _ = authorize(gh)
    status, headers, body = call(f"{gh.url}/login/oauth/access_token",
                                 "POST", {"client_id": gh.client_id,
                                          "client_secret": gh.client_secret,
                                          "code": q["code"]}, form=True)
    assert status == 200
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    reply = dict(urllib.parse.parse_qsl(body.decode()))
    assert reply["token_type"] == "bearer" and reply["access_token"]


def test_api_refuses_bad_tokens_and_hides_private_repos(gh):
    gh.add_user("alice", 7)
    gh.add_user("mallory", 8)
    gh.add_repo("alice/private", private=True)
    gh.add_repo("alice/public")
    assert api(gh, "/user")[0] == 401
    status, _, body = api(gh, "/user", "gho_forged")
    assert status == 401 and body["message"] == "Bad credentials"
    _, q, _ = authorize(gh, login="mallory")
    t = exchange(gh, q["code"])["access_token"]
    assert api(gh, "/repos/alice/private", t)[0] == 404
    status, _, repo = api(gh, "/repos/alice/public", t)
    assert status == 200 and repo["permissions"]["push"] is False
    assert repo["permissions"]["pull"] is True
    assert "permissions" not in api(gh, "/repos/alice/public")[2]
    _, q, _ = authorize(gh, login="alice")
    owner = exchange(gh, q["code"])["access_token"]
    assert api(gh, "/repos/alice/private", owner)[2]["permissions"]["admin"]
    gh.revoke(owner)
    assert api(gh, "/user", owner)[0] == 401
    assert api(gh, "/orgs/nobody", t)[0] == 404


def test_org_pages_and_scopes(gh):
    gh.add_user("alice")
    for i in range(5):
        gh.add_org(f"org-{i}", 500 + i)
        gh.add_member(f"org-{i}", "alice", public=i % 2 == 0)
    _, q, _ = authorize(gh, scope="")
    t = exchange(gh, q["code"])["access_token"]
    # Without read:org only public memberships show.
    assert [o["id"] for o in api(gh, "/user/orgs", t)[2]] == [500, 502, 504]
    _, q, _ = authorize(gh)
    t = exchange(gh, q["code"])["access_token"]
    status, headers, page1 = api(gh, "/user/orgs?per_page=2", t)
    assert [o["id"] for o in page1] == [500, 501]
    assert 'rel="next"' in headers["Link"] and "page=3" in headers["Link"]
    _, headers, page3 = api(gh, "/user/orgs?per_page=2&page=3", t)
    assert [o["id"] for o in page3] == [504] and headers.get("Link") is None


def test_device_flow(gh):
    gh.add_user("alice")
    url = f"{gh.url}/login/oauth/access_token"
    _, _, dev = jcall(f"{gh.url}/login/device/code", "POST",
                      {"client_id": gh.client_id, "scope": "read:org"},
                      {"Accept": "application/json"})
    assert dev["interval"] == 1 and dev["expires_in"] == 900
    assert dev["verification_uri"] == f"{gh.url}/login/device"
    assert call(dev["verification_uri"])[0] == 200
    poll = {"client_id": gh.client_id, "client_secret": gh.client_secret,
            "device_code": dev["device_code"], "grant_type": DEVICE_GRANT}
    accept = {"Accept": "application/json"}
    assert jcall(url, "POST", poll, accept)[2]["error"] == \
        "authorization_pending"
    slow = jcall(url, "POST", poll, accept)[2]
    assert slow["error"] == "slow_down" and slow["interval"] == 6
    gh.approve_device(dev["user_code"], "alice")
    gh._devices[dev["device_code"]]["last_poll"] -= 10   # time passes
    tok = jcall(url, "POST", poll, accept)[2]
    assert api(gh, "/user", tok["access_token"])[2]["login"] == "alice"
    assert jcall(url, "POST", poll, accept)[2]["error"] == \
        "incorrect_device_code"
    # Denied, and a grant that is not ours.
    _, _, dev = jcall(f"{gh.url}/login/device/code", "POST",
                      {"client_id": gh.client_id}, accept)
    status, _, _ = jcall(f"{gh.url}/_ctl/device/deny", "POST",
                         {"user_code": dev["user_code"]})
    assert status == 200
    poll["device_code"] = dev["device_code"]
    assert jcall(url, "POST", poll, accept)[2]["error"] == "access_denied"
    poll["grant_type"] = "password"
    assert jcall(url, "POST", poll, accept)[2]["error"] == \
        "unsupported_grant_type"
    assert jcall(f"{gh.url}/login/device/code", "POST",
                 {"client_id": "nobody"}, accept)[0] == 404


def test_failure_injection_and_control_endpoints(gh):
    ctl = f"{gh.url}/_ctl/"
    assert jcall(ctl + "user", "POST", {"login": "alice", "id": 9})[2] == \
        {"id": 9}
    assert jcall(ctl + "org", "POST", {"login": "acme", "id": 4242})[0] == 200
    assert jcall(ctl + "member", "POST",
                 {"org": "acme", "login": "alice"})[0] == 200
    assert jcall(ctl + "repo", "POST", {"full_name": "acme/x",
                                        "collaborators": {"alice": "boss"}}
                 )[0] == 400
    assert jcall(ctl + "user", "POST", {"login": "bad login"})[0] == 400
    assert jcall(ctl + "nope", "POST", {})[0] == 404
    assert jcall(ctl + "sign_in_as", "POST", {"login": "alice"})[0] == 200
    _, q, _ = authorize(gh)
    t = exchange(gh, q["code"])["access_token"]
    jcall(ctl + "fail", "POST", {"status": 502, "count": 2, "path": "/user"})
    assert api(gh, "/orgs/acme", t)[0] == 200        # not under /user
    assert api(gh, "/user", t)[0] == 502
    assert api(gh, "/user/orgs", t)[0] == 502
    assert api(gh, "/user", t)[0] == 200
    gh.fail(200, body="<html>maintenance</html>")
    status, headers, body = call(f"{gh.url}/user")
    assert status == 200 and headers["Content-Type"] == "text/html"
    gh.fail(None, delay=0.3, path="/orgs")
    t0 = time.monotonic()
    assert api(gh, "/orgs/acme", t)[0] == 200
    assert time.monotonic() - t0 >= 0.3
    stats = jcall(ctl + "stats")[2]
    assert stats["injected"] == 4 and stats["org"] == 2
    assert jcall(ctl + "reset", "POST", {})[0] == 200
    assert gh.stats()["injected"] == 0 and api(gh, "/user", t)[0] == 401
    assert authorize(gh)[0] == 401          # the user is gone too


def test_standalone():
    p = subprocess.Popen([sys.executable, os.path.join(HERE,
                                                       "fake_github.py"),
                          "--user", "alice:5", "--org", "acme:4242",
                          "--member", "acme:alice"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        url = p.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        status, _, body = call(f"{url}/login/oauth/authorize?"
                               + urllib.parse.urlencode({
                                   "client_id": "Iv1.fakeclient0001",
                                   "redirect_uri": "http://127.0.0.1:1/cb",
                                   "state": "s"}))
        assert status == 302
        assert jcall(f"{url}/orgs/acme/public_members/alice")[0] == 204
        assert jcall(f"{url}/_ctl/stats")[2]["codes_issued"] == 1
    finally:
        p.terminate()
        p.wait(10)
