"""The agent's CI endpoints end to end: the real agent, a fake GitHub OIDC
issuer, and a scripted EasyEnclave socket. Fleet owner: org acme (4242)."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BASE_ENV, DD_BIN, request
from fake_ee import FakeEE
from fake_oidc import FakeOIDC

OWNER = {"DD_OWNER": "acme", "DD_OWNER_ID": "4242", "DD_OWNER_KIND": "org"}


@pytest.fixture
def oidc():
    o = FakeOIDC().start()
    yield o
    o.stop()


@pytest.fixture
def ee():
    d = tempfile.mkdtemp(prefix="dd-ee-")
    e = FakeEE(os.path.join(d, "agent.sock")).start()
    yield e
    e.stop()
    os.rmdir(d)


def agent_env(ita_env, oidc, ee, **extra):
    env = dict(ita_env, **OWNER, **oidc.env(), DD_API_PORT="0",
               DD_CP_URL="http://127.0.0.1:9", EE_SOCKET_PATH=ee.path,
               DD_EE_WAIT_SECS="5")
    env.update(extra)
    return env


@pytest.fixture
def agent(start, ita_env, oidc, ee):
    return start([DD_BIN, "agent"], agent_env(ita_env, oidc, ee))


def call(agent, method, path, token=None, body=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else b""
    return request(agent.port, method, path, h, data)


# What every agent HTML page answers with (issue 7, agent/page_reply.c).
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"content-security-policy": PAGE_CSP,
                "x-content-type-options": "nosniff",
                "referrer-policy": "same-origin",
                "cache-control": "no-store",
                "content-type": "text/html; charset=utf-8"}


def assert_page_headers(r):
    """An HTML page with each of the page headers, exactly once."""
    for name, value in PAGE_HEADERS.items():
        got = [v for k, v in r.headers if k == name]
        assert got == [value], (r.status, name, got)


def assert_json_answer(r):
    """JSON as before: no page policy, the server's defaults only."""
    assert r.header("content-type") == "application/json", r.headers
    assert r.header("content-security-policy") is None
    assert r.header("referrer-policy") is None
    assert [v for k, v in r.headers if k == "x-content-type-options"] == ["nosniff"]
    r.json()


def health(agent):
    return request(agent.port, "GET", "/health").json()


def test_health_shape_and_integrity(agent, ee):
    h = health(agent)
    assert h["service"] == "agent" and h["ok"] is True
    assert h["fleet_owner_principal"] == {"name": "acme", "id": 4242, "kind": "org"}
    assert h["agent_owner"] is None and h["agent_owner_principal"] is None
    assert h["confidential_mode"] is False and h["agent_mode"] == "read_write"
    assert h["integrity_state"] == "controlled"
    assert h["integrity_reasons"] == ["arbitrary_exec_enabled"]
    assert h["taint_reasons"] == h["integrity_reasons"]
    assert h["attestation_type"] == "tdx"
    assert h["runtime_reachable"] is True
    assert h["deployments"] == [] and h["deployment_count"] == 0


def test_deploy_exec_logs_with_the_owner_token(agent, oidc, ee):
    spec = {"app_name": "web", "cmd": ["web"], "env": ["PORT=9000"],
            "expose": {"hostname_label": "web", "port": 9000}}
    r = call(agent, "POST", "/deploy", oidc.token("acme", 4242), spec)
    assert r.status == 200, r.body
    assert r.json()["ok"] is True and r.json()["status"] == "deploying"
    # The agent also polls health and list in the background.
    sent = [q for q in ee.requests if q["method"] == "deploy"][-1]
    assert sent["app_name"] == "web"
    assert sent["expose"] == {"hostname_label": "web", "port": 9000}
    h = health(agent)
    assert "customer_workload_deployed" in h["integrity_reasons"]
    assert h["extra_ingress"] == [{"hostname_label": "web", "port": 9000}]
    r = call(agent, "POST", "/exec", oidc.token("acme", 4242),
             {"cmd": ["echo", "hi"]})
    assert r.status == 200 and r.json()["stdout"] == "echo hi"
    assert [q for q in ee.requests if q["method"] == "exec"][-1]["timeout_secs"] == 60
    r = call(agent, "GET", "/logs/web", oidc.token("acme", 4242))
    assert r.status == 200 and r.json()["lines"] == ["log of id-1"]
    r = call(agent, "GET", "/logs/nope", oidc.token("acme", 4242))
    assert r.status == 404 and r.json()["code"] == "not_found"


def test_refusals(agent, oidc, ee):
    good = {"app_name": "web", "cmd": ["web"]}
    assert call(agent, "POST", "/deploy", None, good).status == 401
    r = call(agent, "POST", "/deploy", oidc.token("evil", 666), good)
    assert r.status == 403 and r.json()["code"] == "wrong_owner"
    tok = oidc.token("acme", 4242)
    assert call(agent, "POST", "/deploy", tok, good).status == 200
    r = call(agent, "POST", "/deploy", tok, good)     # the same token again
    assert r.status == 401 and r.json()["code"] == "replayed"
    for body in ([1, 2], {"cmd": ["x"]}, {"app_name": ""}, "text"):
        r = call(agent, "POST", "/deploy", oidc.token("acme", 4242), body)
        assert r.status == 400, body
    for body in ({"cmd": []}, {"cmd": "ls"}, {"cmd": [1]},
                 {"cmd": ["ls"], "timeout_secs": 0},
                 {"cmd": ["ls"], "timeout_secs": "5"}):
        r = call(agent, "POST", "/exec", oidc.token("acme", 4242), body)
        assert r.status == 400, body
    assert not [q for q in ee.requests if q["method"] in ("exec",)]


def test_owner_sets_the_tenant(agent, oidc, ee):
    body = {"agent_owner": "tenant-co", "agent_owner_id": 42,
            "agent_owner_kind": "org", "claim_id": "issue-7"}
    # Only the fleet owner may hand the VM over.
    assert call(agent, "POST", "/owner", oidc.token("tenant-co", 42), body).status == 403
    r = call(agent, "POST", "/owner", oidc.token("acme", 4242), body)
    assert r.status == 200, r.body
    o = r.json()
    assert o["agent_owner"] == "tenant-co" and o["previous_owner"] is None
    assert o["agent_owner_principal"] == {"name": "tenant-co", "id": 42, "kind": "org"}
    assert o["claim_id"] == "issue-7"
    h = health(agent)
    assert h["agent_owner"] == "tenant-co"
    assert h["integrity_reasons"][0] == "customer_owner_enabled"
    # The tenant's CI may now deploy, but still not change the owner.
    r = call(agent, "POST", "/deploy", oidc.token("tenant-co", 42),
             {"app_name": "t", "cmd": ["t"]})
    assert r.status == 200
    assert call(agent, "POST", "/owner", oidc.token("tenant-co", 42), body).status == 403
    # A tenant with the right name but another id is not the tenant.
    r = call(agent, "POST", "/deploy", oidc.token("tenant-co", 43),
             {"app_name": "t", "cmd": ["t"]})
    assert r.status == 403
    bad = dict(body, agent_owner_kind="team")
    assert call(agent, "POST", "/owner", oidc.token("acme", 4242), bad).status == 400
    r = call(agent, "POST", "/owner", oidc.token("acme", 4242), {"agent_owner": " "})
    assert r.status == 200 and r.json()["previous_owner"] == "tenant-co"
    assert health(agent)["agent_owner"] is None
    # Clearing never removes the taint: the VM was handed over once.
    assert "customer_owner_enabled" in health(agent)["integrity_reasons"]


def test_runtime_down_is_502_and_health_degrades(agent, oidc, ee):
    ee.down = True
    r = call(agent, "POST", "/exec", oidc.token("acme", 4242), {"cmd": ["ls"]})
    assert r.status == 502 and r.json()["code"] == "upstream_failed"
    assert health(agent)["ok"] is True


def test_confidential_mode_removes_code_paths(start, ita_env, oidc, ee):
    a = start([DD_BIN, "agent"], agent_env(ita_env, oidc, ee,
                                           DD_CONFIDENTIAL="1"))
    for path in ("/deploy", "/exec", "/owner"):
        r = call(a, "POST", path, oidc.token("acme", 4242), {"cmd": ["ls"]})
        assert r.status == 404, path
    h = health(a)
    assert h["confidential_mode"] is True and h["agent_mode"] == "read_only"
    assert h["integrity_state"] == "clean" and h["integrity_reasons"] == []
    # Logs stay readable for the owner.
    assert call(a, "GET", "/logs/x", oidc.token("acme", 4242)).status == 404


def test_boot_waits_for_easyenclave_then_gives_up(ita_env, oidc):
    env = dict(os.environ)
    env.update(BASE_ENV)
    env.update(agent_env(ita_env, oidc, FakeEE("/nonexistent/dd/agent.sock"),
                         DD_EE_WAIT_SECS="1"))
    env.pop("DD_MODE", None)
    r = subprocess.run([DD_BIN, "agent"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1
    assert "EasyEnclave at /nonexistent/dd/agent.sock did not answer" in r.stdout + r.stderr


def test_pages_show_workloads_and_escape_everything(start, ita_env, oidc, ee):
    from test_auth import mint_session, session_claims, ticket_into_agent
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}"))
    r = call(a, "POST", "/deploy", oidc.token("acme", 4242),
             {"app_name": "web", "cmd": ["x"]})
    assert r.status == 200
    # /deploy now refuses such a name (bad_workload), but what EasyEnclave
    # lists is still untrusted (boot workloads, other clients): seed it there.
    ee.deployments[0]["app_name"] = "<script>alert(1)</script>"
    admin = mint_session(session_claims())
    r, _ = ticket_into_agent(cp, a, admin)
    cookie = {"Cookie": "dd_agent_session=" +
              [v for k, v in r.headers if k == "set-cookie"][0]
              .split(";")[0].split("=", 1)[1]}

    def page(path):
        import time
        for _ in range(100):   # the EE list is refreshed in the background
            p = request(a.port, "GET", path, cookie)
            # Wait for a refresh that read the seeded name, not just id-1.
            if p.status == 200 and (b"alert(1)" in p.body or path != "/"):
                return p
            time.sleep(0.1)
        return p

    p = page("/")
    assert p.status == 200
    assert b"<script>alert(1)</script>" not in p.body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in p.body
    assert b'href="/workload/id-1"' in p.body
    assert b"SIMULATED" in p.body and b"fleet admin" in p.body
    # Only our own stylesheet; no scripts, nothing from elsewhere.
    assert b"<script" not in p.body and b"http" not in p.body.split(b"<main>")[0]
    assert_page_headers(p)
    w = request(a.port, "GET", "/workload/id-1", cookie)
    assert w.status == 200 and b"log of id-1" in w.body
    assert_page_headers(w)
    # An unknown workload is a JSON 404 (no HTML error page), as is /health.
    r = request(a.port, "GET", "/workload/nope", cookie)
    assert r.status == 404
    assert_json_answer(r)
    assert_json_answer(request(a.port, "GET", "/health", cookie))


def test_deploy_refuses_malformed_workloads_by_field(agent, oidc, ee):
    # The same schema as `client deploy`: a typo or a wrong type is a 400
    # naming the field, and nothing reaches EasyEnclave.
    cases = [
        ({"app_name": "web", "cmd": ["web"], "env": ["A=1", "B=2", 3]},
         "env[2]"),
        ({"app_name": "web", "cmd": ["web"], "env": ["NOEQUALS"]}, "env[0]"),
        ({"app_name": "web", "comand": ["web"]}, "comand"),
        ({"app_name": "../x", "cmd": ["web"]}, "app_name"),
        ({"app_name": "web", "cmd": ["web"],
          "expose": {"hostname_label": "Web", "port": 9000}},
         "expose.hostname_label"),
        ({"app_name": "web", "cmd": ["web"],
          "expose": {"hostname_label": "web", "port": "9000"}},
         "expose.port"),
        ({"app_name": "web", "github_release": {"repo": "org", "asset": "a"}},
         "github_release.repo"),
        ({"app_name": "web", "cmd": ["web"], "inherit_token": True},
         "inherit_token"),
        ({"app_name": "web", "cmd": ["web"], "tty": "yes"}, "tty"),
        ({"app_name": "web"}, "cmd"),
    ]
    for spec, field in cases:
        r = call(agent, "POST", "/deploy", oidc.token("acme", 4242), spec)
        assert r.status == 400, (spec, r.body)
        body = r.json()
        assert body["code"] == "bad_workload", body
        assert field in body["message"], (field, body)
    assert not [q for q in ee.requests if q["method"] == "deploy"]
    assert "customer_workload_deployed" not in health(agent)["integrity_reasons"]
