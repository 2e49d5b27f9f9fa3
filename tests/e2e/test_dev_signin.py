"""Dev sign-in needs this run's code, as a Jupyter server needs its token:
a dev CP listens on loopback, which every local user reaches, and a
fleet admin there can open shells as whoever runs the fleet. The real CP
in dev mode, with a configured code (DD_DEV_SIGNIN_CODE, as `devopsdefender
dev` gives it) and without one (the CP makes one and logs its URL).
docs/auth.md "Dev sign-in"."""
import html
import re
import urllib.parse

import pytest

from conftest import DD_BIN, request

CODE = "e2e-dev-sign-in-code_0123456789"
FORM = "application/x-www-form-urlencoded"
LOGGED = re.compile(r"sign in at (http://127\.0\.0\.1:(\d+)/auth/dev\?code="
                    r"([A-Za-z0-9_-]+))")


@pytest.fixture
def dev_cp(start, ita_env):
    return start([DD_BIN, "cp"], dict(ita_env, DD_DEV_SIGNIN_CODE=CODE))


def post(cp, form, path="/auth/dev"):
    return request(cp.port, "POST", path,
                   {"Content-Type": FORM,
                    "Origin": f"http://127.0.0.1:{cp.port}"}, form.encode())


def session_of(r):
    for k, v in r.headers:
        if k == "set-cookie" and v.startswith("dd_session="):
            return v.split(";")[0].split("=", 1)[1]
    return None


def me(cp, session):
    return request(cp.port, "GET", "/auth/me",
                   {"Cookie": f"dd_session={session}"}).json()


def hidden(page, name):
    m = re.search(r'<input type=hidden name=%s value="([^"]*)"' % name, page)
    return html.unescape(m.group(1)) if m else None


def refused(r):
    """The one answer for every code but the right one: 403 bad_code, no
    session, the same words whatever was wrong."""
    assert r.status == 403, (r.status, r.body)
    assert r.json()["code"] == "bad_code"
    assert "sign-in URL the dev fleet printed" in r.json()["message"]
    assert session_of(r) is None
    return r.body


def test_the_right_code_signs_in_and_no_other_does(dev_cp):
    r = post(dev_cp, f"code={CODE}&login=devvy&admin=1&return_to=/")
    assert r.status == 303, r.body
    assert r.header("location") == "/"
    m = me(dev_cp, session_of(r))
    assert m["login"] == "devvy" and m["dev"] is True and m["is_fleet_admin"]

    bodies = {refused(post(dev_cp, form)) for form in (
        "login=devvy&admin=1",                            # no code
        "code=&login=devvy&admin=1",                      # empty
        "code=%s&login=devvy&admin=1" % ("A" * len(CODE)),  # wrong, same length
        "code=%s&login=devvy&admin=1" % CODE.upper(),     # case matters
        "code=%sX&login=devvy&admin=1" % CODE[:-1],       # last character
        "code=%s&login=devvy&admin=1" % CODE[:-1],        # too short
        "code=%sA&login=devvy&admin=1" % CODE,            # too long
        "code=%s&login=devvy&admin=1" % (CODE * 10),      # far too long
        "code=%25zz&login=devvy&admin=1",                 # not even text
        "login=devvy&admin=1&code=" + "e2e-dev-sign-in-code_012345678X",
    )}
    # Nothing in the refusal depends on how close the guess was.
    assert len(bodies) == 1, bodies
    # Only the form counts: the code in the POST's URL is not a form field.
    refused(post(dev_cp, "login=devvy&admin=1", f"/auth/dev?code={CODE}"))
    # The code does not excuse a bad login, and a bad login learns nothing
    # about the code: it is checked first.
    assert post(dev_cp, f"code={CODE}&login=-bad-").status == 400
    refused(post(dev_cp, "code=nope&login=-bad-"))


def test_the_page_keeps_the_code_or_says_where_it_is(dev_cp):
    # Opened from the printed URL: the code rides the form, hidden.
    r = request(dev_cp.port, "GET", f"/auth/dev?code={CODE}")
    page = r.body.decode()
    assert r.status == 200 and hidden(page, "code") == CODE
    assert "type=password" not in page
    assert r.header("cache-control") == "no-store"
    assert r.header("referrer-policy") == "same-origin"
    # A redirect from a page that needs a session cannot carry it: the page
    # says where the URL is and takes the code typed in.
    back = f"http://127.0.0.1:{dev_cp.port}/fleet"
    r = request(dev_cp.port, "GET", "/auth/dev?return_to=" +
                urllib.parse.quote(back, ""))
    page = r.body.decode()
    assert r.status == 200 and hidden(page, "code") is None
    assert "sign-in URL the dev fleet printed" in page
    assert "<input type=password name=code required" in page
    assert hidden(page, "return_to") == back
    # Something else in ?code is not echoed back: asked for, as without.
    r = request(dev_cp.port, "GET", "/auth/dev?code=%3Cscript%3Ex")
    page = r.body.decode()
    assert hidden(page, "code") is None and "<script>" not in page
    assert "sign-in URL the dev fleet printed" in page
    # A wrong code in the URL is kept like any other and refused at POST:
    # the page tells nothing about it.
    r = request(dev_cp.port, "GET", "/auth/dev?code=" + "B" * len(CODE))
    assert hidden(r.body.decode(), "code") == "B" * len(CODE)
    # The configured code is the configurer's: never in the CP's log.
    assert CODE not in dev_cp.output()
    assert "sign in at" not in dev_cp.output()


def test_a_cp_without_a_code_makes_one_and_logs_its_url_once(start, ita_env):
    cp = start([DD_BIN, "cp"], ita_env)
    found = LOGGED.findall(cp.output())
    assert len(found) == 1, cp.output()[-3000:]
    url, port, code = found[0]
    assert int(port) == cp.port and len(code) == 22
    # The logged URL opens the page with the code in its form.
    r = request(cp.port, "GET", url.split(str(cp.port), 1)[1])
    assert hidden(r.body.decode(), "code") == code
    # Refused without it, with another code, with one a step off.
    refused(post(cp, "login=devvy&admin=1"))
    refused(post(cp, f"code={CODE}&login=devvy&admin=1"))
    refused(post(cp, f"code={code[:-1]}&login=devvy&admin=1"))
    # With it: signed in.
    r = post(cp, f"code={code}&login=devvy&admin=1")
    assert r.status == 303, r.body
    assert me(cp, session_of(r))["is_fleet_admin"] is True
    # Another CP makes another code; this one's does not open it.
    other = start([DD_BIN, "cp"], ita_env)
    (_, _, code2), = LOGGED.findall(other.output())
    assert code2 != code
    refused(post(other, f"code={code}&login=devvy&admin=1"))
    assert post(other, f"code={code2}&login=devvy").status == 303
    # Logged once, at start-up, not per request.
    assert len(LOGGED.findall(cp.output())) == 1


# --- `devopsdefender dev`: the banner's URL, new each run -------------------

def test_the_dev_fleet_prints_a_new_sign_in_url_each_run():
    import os

    from conftest import ROOT
    from test_dev_fleet import (banner_urls, dev_sign_in, descendants,
                                signin_url, start_fleet, stop_fleet)
    p, banner, _ = start_fleet()
    try:
        cp, _ = banner_urls(banner)
        url, code = signin_url(banner)
        assert url == f"{cp}/auth/dev?code={code}"
        port = int(cp.rsplit(":", 1)[1])
        r = request(port, "GET", url[len(cp):])
        assert hidden(r.body.decode(), "code") == code
        assert dev_sign_in(cp, code)
        # The code is in the banner only: not in the fleet's log, not on
        # any command line (ps shows those to every local user).
        assert code not in open(p.log, errors="replace").read()
        for pid in descendants(p.pid):
            assert code.encode() not in open(f"/proc/{pid}/cmdline", "rb").read()
    finally:
        stop_fleet(p)
    p, banner, _ = start_fleet()
    try:
        cp, _ = banner_urls(banner)
        _, code2 = signin_url(banner)
        assert code2 != code
        port = int(cp.rsplit(":", 1)[1])
        r = request(port, "POST", "/auth/dev",
                    {"Content-Type": FORM, "Origin": cp},
                    f"code={code}&login=devvy&admin=1".encode())
        refused(r)
        assert dev_sign_in(cp, code2)
    finally:
        stop_fleet(p)
    # The README's quick start says to open that URL.
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert re.search(r"Sign in +http://127\.0\.0\.1:8080/auth/dev\?code=", readme)
