"""The agent's pages in a real browser (headless Chromium): they load,
style themselves from our own stylesheet, run no script, request nothing
from anywhere else, and show what the VM is running."""
import time

from conftest import DD_BIN, request
from test_agent_api import OWNER, agent_env, call, ee, oidc  # noqa: F401 (fixtures)
from test_auth import mint_session, session_claims, ticket_into_agent
import browser


def agent_cookie(cp, agent, claims):
    r, _ = ticket_into_agent(cp, agent, mint_session(claims))
    return [v for k, v in r.headers if k == "set-cookie"][0] \
        .split(";")[0].split("=", 1)[1]


def test_dashboard_and_workload_page_in_chromium(start, ita_env, oidc, ee):
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    assert call(a, "POST", "/deploy", oidc.token("acme", 4242),
                {"app_name": "web", "cmd": ["web"]}).status == 200
    cookie = agent_cookie(cp, a, session_claims())
    base = f"http://127.0.0.1:{a.port}"
    # The EE list behind the page refreshes in the background.
    for _ in range(100):
        if b">web<" in request(a.port, "GET", "/", {"Cookie": f"dd_agent_session={cookie}"}).body:
            break
        time.sleep(0.1)
    page = browser.visit(base + "/", {"dd_agent_session": cookie})
    assert page["title"].startswith("DD — ")
    assert "web" in page["text"] and "Workloads" in page["text"]
    assert "SIMULATED" in page["text"]
    assert page["sheets"] == 1
    assert page["errors"] == [] and page["console"] == []
    assert page["requests"] and all(u.startswith(base) for u in page["requests"]), page["requests"]
    page = browser.visit(base + "/workload/id-1", {"dd_agent_session": cookie})
    assert "log of id-1" in page["text"]
    assert all(u.startswith(base) for u in page["requests"])


def test_a_stranger_sees_refusal_not_data(start, ita_env, oidc, ee):
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    cookie = agent_cookie(cp, a, session_claims(
        login="mallory", user_id=666, orgs=[], is_fleet_admin=False))
    page = browser.visit(f"http://127.0.0.1:{a.port}/",
                         {"dd_agent_session": cookie})
    assert "mallory" in page["text"] and "Workloads" not in page["text"]


def test_the_page_policy_holds_in_chromium(start, ita_env, oidc, ee):
    """The agent's Content-Security-Policy as Chromium enforces it: the
    page itself loads clean (our stylesheet, the data: icon), while an
    inline style, a script and an image from elsewhere slipped into it
    are refused."""
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    cookie = agent_cookie(cp, a, session_claims())
    base = f"http://127.0.0.1:{a.port}"
    with browser.Browser() as b:
        b._run(b.page.call("Network.setCookie", name="dd_agent_session",
                           value=cookie, url=base + "/"))
        b.goto(base + "/")
        assert b.eval("document.styleSheets.length") == 1
        assert b.errors == [] and b.console == []
        refused = b.eval("""new Promise(done => {
            const seen = [];
            document.addEventListener('securitypolicyviolation',
                                      e => seen.push(e.effectiveDirective));
            const s = document.createElement('style');
            s.textContent = 'body { display: none }';
            const i = document.createElement('img');
            i.src = 'http://127.0.0.2:9/x.png';
            const j = document.createElement('script');
            j.src = '/static/fleet.js';
            document.body.append(s, i, j);
            setTimeout(() => done(seen.sort()), 1000);
        })""")
        assert refused == ["img-src", "script-src-elem", "style-src-elem"]
        assert b.eval("getComputedStyle(document.body).display") != "none"
