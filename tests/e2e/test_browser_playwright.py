"""The agent's dashboard driven in Debian's Chromium by playwright-core:
sign-in cookie set, the dashboard lists the workload, a click on it opens
its page with its log, the way back works, and nothing is fetched from
anywhere but the agent itself."""
import time

from conftest import DD_BIN, request
from test_agent_api import OWNER, agent_env, call, ee, oidc  # noqa: F401 (fixtures)
from test_auth import session_claims
from test_browser import agent_cookie
import pw

def test_agent_dashboard_click_through(start, ita_env, oidc, ee):
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    assert call(a, "POST", "/deploy", oidc.token("acme", 4242),
                {"app_name": "web", "cmd": ["web"]}).status == 200
    cookie = agent_cookie(cp, a, session_claims())
    base = f"http://127.0.0.1:{a.port}"
    for _ in range(100):
        if b">web<" in request(a.port, "GET", "/",
                               {"Cookie": f"dd_agent_session={cookie}"}).body:
            break
        time.sleep(0.1)
    out = pw.run([
        {"goto": base + "/"},
        {"title": True},
        {"wait_text": "Workloads"},
        {"count": "a[href^='/workload/']"},
        {"click": "a[href^='/workload/']"},
        {"wait_text": "log of id-1"},
        {"title": True},
        {"click": "a[href='/']"},
        {"wait_text": "Workloads"},
    ], cookies=[("dd_agent_session", cookie, base)])
    status, title, _, links, url, _, wtitle, back, _ = out["results"]
    assert status == 200
    assert title.startswith("DD — ")
    assert links >= 1
    assert url == base + "/workload/id-1"
    assert wtitle.startswith("DD — ")
    assert back == base + "/"
    assert out["errors"] == [] and out["console"] == [], out
    assert out["requests"] and all(u.startswith(base) for u in out["requests"]), \
        out["requests"]


def test_without_a_session_the_dashboard_shows_nothing(start, ita_env, oidc, ee):
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    base = f"http://127.0.0.1:{a.port}"
    out = pw.run([{"goto": base + "/"}, {"text": "body"}])
    # No session: sent to sign in (or refused), never the workloads.
    assert "Workloads" not in out["results"][1]
