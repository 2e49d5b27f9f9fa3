"""The real Cloudflare client (src/cloudflare) against the fake Cloudflare
API (fake_cf.py), driven through tests/dd-cftool: pagination, retries,
Retry-After, timeouts, the v4 envelope, the composite operations, the
Access cleanup and the snapshot/map with the degraded rule."""
import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import TESTSERVER
from fake_cf import FakeCF

CFTOOL = os.path.join(os.path.dirname(TESTSERVER), "dd-cftool")
DOMAIN = "example.com"


@pytest.fixture
def cf():
    fake = FakeCF(token="tok-e2e-secret-5d41402abc4b2a76b9719d911017c592")
    fake.start()
    yield fake
    fake.stop()


def run(cf, *args, **env):
    e = dict(os.environ)
    e.update(cf.env())
    # Quick retries so the suite stays fast; policy is what is tested.
    e.update({"DD_CF_BACKOFF_MS": "20", "DD_CF_MAX_WAIT_MS": "3000",
              "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
              "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    e.update({k: str(v) for k, v in env.items()})
    p = subprocess.run([CFTOOL] + [str(a) for a in args], env=e,
                       capture_output=True, text=True, timeout=60)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, \
        p.stderr
    # The bearer token never reaches output, whatever happened.
    assert cf.token not in p.stdout and cf.token not in p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert (p.returncode == 0) == out["ok"], (p.returncode, out)
    return out


def ok(cf, *args, **env):
    out = run(cf, *args, **env)
    assert out["ok"], out
    return out["result"]


def pages_of(calls):
    return [int(c["query"].get("page", 0)) for c in calls]


# --- the call helper ---------------------------------------------------------

def test_pagination_past_1000_records(cf):
    cf.seed_many_dns(2345)
    res = ok(cf, "cnames")
    assert len(res) == 2345
    assert len({r["id"] for r in res}) == 2345
    calls = cf.calls("GET", "dns_records")
    assert pages_of(calls) == [1, 2, 3, 4, 5]
    assert all(c["query"]["per_page"] == "500" for c in calls)
    assert all(c["query"]["type"] == "CNAME" for c in calls)


def test_tunnel_and_app_lists_paginate(cf):
    for i in range(1050):
        cf.seed_tunnel(f"dd-pr-1-agent-{i:04d}")
    cf.seed_tunnel("dd-pr-1-agent-gone", deleted=True)
    for i in range(230):
        cf.seed_app(f"app-{i}", f"a{i}.{DOMAIN}")
    assert len(ok(cf, "tunnels")) == 1050
    calls = cf.calls("GET", "cfd_tunnel$")
    assert pages_of(calls) == [1, 2, 3, 4, 5, 6]
    assert all(c["query"]["is_deleted"] == "false" for c in calls)
    assert len(ok(cf, "apps")) == 230
    assert pages_of(cf.calls("GET", "access/apps")) == [1, 2, 3]


def test_list_bigger_than_the_cap_fails_instead_of_truncating(cf):
    cf.seed_many_dns(700)
    out = run(cf, "cnames", DD_CF_MAX_ITEMS=600)
    assert not out["ok"] and out["code"] == "too_large"
    assert "more than 600 items" in out["error"]


def test_429_retry_after_is_honoured(cf):
    cf.fail("cfd_tunnel", 429, count=1, retry_after=2)
    assert ok(cf, "tunnels") == []
    t = [c["t"] for c in cf.calls("GET", "cfd_tunnel")]
    assert len(t) == 2
    # The back-off alone would be 20-40 ms: the wait is Retry-After's.
    assert t[1] - t[0] >= 1.9


def test_5xx_is_retried_then_reported(cf):
    cf.fail("dns_records", 503, count=2)
    assert ok(cf, "cnames") == []
    assert len(cf.calls("GET", "dns_records")) == 3
    cf.fail("dns_records", 500, count=10)
    out = run(cf, "cnames", DD_CF_ATTEMPTS=3)
    assert out["code"] == "upstream" and out["status"] == 500
    assert "CF GET /zones/" + cf.zone + "/dns_records -> 500" in out["error"]
    assert len(cf.calls("GET", "dns_records")) == 3 + 3


def test_a_create_is_never_sent_twice(cf):
    cf.fail("cfd_tunnel$", 502, method="POST", count=5)
    out = run(cf, "create-tunnel", "dd-dev-agent-x", f"dd-dev-agent-x.{DOMAIN}",
              8080, 8081, "")
    assert not out["ok"] and out["code"] == "upstream"
    assert f"CF POST /accounts/{cf.account}/cfd_tunnel -> 502" in out["error"]
    assert len(cf.calls("POST", "cfd_tunnel")) == 1
    assert cf.live_tunnels() == {}


def test_success_false_on_200_keeps_cloudflare_codes(cf):
    cf.fail("dns_records", 200, errors=[
        {"code": 1004, "message": "DNS Validation Error"},
        {"code": 9005, "message": "Content for CNAME record is invalid"}])
    out = run(cf, "cnames")
    assert not out["ok"] and out["code"] == "upstream"
    assert out["cf_code"] == 1004 and out["status"] == 200
    assert "[1004] DNS Validation Error; [9005] Content" in out["error"]


def test_garbage_and_missing_result_are_clear_errors(cf):
    cf.fail("cfd_tunnel", 200, body="<html>maintenance</html>")
    out = run(cf, "tunnels")
    assert "not a JSON object: <html>maintenance" in out["error"]
    cf.fail("cfd_tunnel", 200, body='{"success":true,"result":{"id":1}}')
    out = run(cf, "tunnels")
    assert "\"result\" is not a list" in out["error"]
    cf.fail("cfd_tunnel", 200, body='{"result":[]}')
    out = run(cf, "tunnels")
    assert "not a Cloudflare v4 envelope" in out["error"]


def test_slow_answer_times_out(cf):
    cf.fail("cfd_tunnel", None, delay=2.5, count=2)
    start = time.monotonic()
    out = run(cf, "tunnels", DD_CF_TIMEOUT_MS=400, DD_CF_ATTEMPTS=2)
    assert out["code"] == "timeout"
    assert "timed out after 2 attempt(s)" in out["error"]
    # Two answered attempts would take 5 s; slack for a loaded machine.
    assert time.monotonic() - start < 4.5


def test_wrong_token_and_account(cf):
    out = run(cf, "tunnels", DD_CF_API_TOKEN="not-the-token")
    assert out["status"] == 403 and out["cf_code"] == 10000
    assert "Authentication error" in out["error"]
    out = run(cf, "tunnels", DD_CF_ACCOUNT_ID="ffffffffffffffffffffffffffffffff")
    assert out["status"] == 403
    # Ids that would bend the path are refused before any request.
    before = len(cf.calls())
    out = run(cf, "get-tunnel", "../../zones")
    assert out.get("start") and out["code"] == "invalid"
    assert len(cf.calls()) == before


# --- composite operations ----------------------------------------------------

def agent_host(name):
    return f"{name}.{DOMAIN}"


def test_create_tunnel_with_ingress_and_cnames(cf):
    name = "dd-pr-7-agent-0f6a2b1c-3d4e-4f50-8a9b-0c1d2e3f4a5b"
    host = agent_host(name)
    res = ok(cf, "create-tunnel", name, host, 8090, 8091, "oracle:8082")
    tid = res["id"]
    assert res["reused"] is False and res["hostname"] == host
    assert res["token"] == cf.tunnels[tid]["_token"]
    api = f"dd-pr-7-api-0f6a2b1c-3d4e-4f50-8a9b-0c1d2e3f4a5b.{DOMAIN}"
    oracle = f"{name}-oracle.{DOMAIN}"
    assert res["extra_hostnames"] == [oracle, api]
    # Rules: extras in order, then the primary, then the catch-all;
    # ports are the configured ones.
    assert cf.ingress(tid) == [
        {"hostname": oracle, "service": "http://localhost:8082"},
        {"hostname": api, "service": "http://localhost:8091"},
        {"hostname": host, "service": "http://localhost:8090"},
        {"service": "http_status:404"}]
    target = f"{tid}.cfargotunnel.com"
    assert cf.cnames() == {host: target, oracle: target, api: target}
    assert all(r["proxied"] for r in cf.dns.values())
    post = cf.calls("POST", "cfd_tunnel$")[0]["body"]
    assert post["config_src"] == "cloudflare" and post["name"] == name
    import base64
    assert len(base64.b64decode(post["tunnel_secret"])) == 32
    # CNAMEs: primary first, then the extras in order.
    created = [c["body"]["name"] for c in cf.calls("POST", "dns_records")]
    assert created == [host, oracle, api]


def test_create_reuses_a_tunnel_of_that_name(cf):
    name = "dd-dev-agent-11111111-2222-4333-8444-555555555555"
    first = ok(cf, "create-tunnel", name, agent_host(name), 8080, 8081, "")
    again = ok(cf, "create-tunnel", name, agent_host(name), 8080, 8081, "")
    assert again["reused"] is True and again["id"] == first["id"]
    assert again["token"] == first["token"]
    assert list(cf.live_tunnels()) == [name]
    assert len(cf.calls("POST", "cfd_tunnel$")) == 1
    # The CNAMEs already pointed there: no rewrite.
    assert cf.calls("PUT", "dns_records/") == []


def test_create_refuses_bad_labels_before_any_call(cf):
    name = "dd-production-agent-73744f46-0000-4000-8000-000000000000"
    out = run(cf, "create-tunnel", name, agent_host(name), 8080, 8081,
              "oracles:8082")
    assert out["code"] == "invalid" and out.get("start")
    assert "64 bytes" in out["error"]
    out = run(cf, "create-tunnel", name, agent_host(name), 8080, 8081,
              "Web:8082")
    assert out["code"] == "invalid"
    assert cf.calls() == []


def test_replace_ingress_adds_and_removes_cnames(cf):
    name = "dd-dev-agent-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    host = agent_host(name)
    tid = ok(cf, "create-tunnel", name, host, 8080, 8081,
             "oracle:8082,shell:7682")["id"]
    other = cf.seed_tunnel("dd-dev-agent-other")
    # The dropped "shell" host is re-pointed at another tunnel by someone
    # else: only records into our tunnel may be deleted.
    shell = f"{name}-shell.{DOMAIN}"
    for rid, r in list(cf.dns.items()):
        if r["name"] == shell:
            r["content"] = f"{other}.cfargotunnel.com"
    res = ok(cf, "apply-ingress", tid, host, 8080, 8081, "web:9000")
    web = f"{name}-web.{DOMAIN}"
    oracle = f"{name}-oracle.{DOMAIN}"
    assert res["extra_hostnames"] == [web, f"dd-dev-api-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee.{DOMAIN}"]
    assert res["removed_hostnames"] == [oracle]
    names = cf.cnames()
    assert web in names and oracle not in names
    assert names[shell] == f"{other}.cfargotunnel.com"
    assert [r["hostname"] for r in cf.ingress(tid)[:-1]] == \
        [web, res["extra_hostnames"][1], host]
    assert cf.ingress(tid)[0]["service"] == "http://localhost:9000"


def test_upsert_updates_a_cname_pointing_elsewhere(cf):
    tid = cf.seed_tunnel("dd-dev-agent-u")
    rid = cf.seed_dns(f"x.{DOMAIN}", "old.cfargotunnel.com", proxied=False)
    res = ok(cf, "upsert-cname", f"x.{DOMAIN}", tid)
    assert res == {"record_id": rid, "action": "updated"}
    assert cf.dns[rid]["content"] == f"{tid}.cfargotunnel.com"
    assert cf.dns[rid]["proxied"] is True
    res = ok(cf, "upsert-cname", f"x.{DOMAIN}", tid)
    assert res["action"] == "unchanged"
    assert len(cf.calls("PUT", "dns_records")) == 1


def test_upsert_fails_when_the_lookup_fails(cf):
    tid = cf.seed_tunnel("dd-dev-agent-u")
    cf.fail("dns_records", 503, count=10, method="GET")
    out = run(cf, "upsert-cname", f"x.{DOMAIN}", tid, DD_CF_ATTEMPTS=2)
    assert not out["ok"]
    # No blind create after a failed lookup.
    assert cf.calls("POST", "dns_records") == []


def test_delete_tunnel_drops_connections_first(cf):
    name = "dd-dev-agent-del"
    tid = cf.seed_tunnel(name)
    keep = cf.seed_tunnel("dd-dev-agent-del2")
    cf.connect(tid)
    # Without dropping the connections Cloudflare refuses the delete.
    out = run(cf, "raw", "DELETE", f"/accounts/{cf.account}/cfd_tunnel/{tid}")
    assert out["status"] == 400 and out["cf_code"] == 1022
    res = ok(cf, "delete-tunnel", name)
    assert res == {"deleted": [tid], "failed": []}
    methods = [(c["method"], c["path"].rsplit("/", 1)[-1])
               for c in cf.calls() if c["method"] == "DELETE"]
    assert methods[-2:] == [("DELETE", "connections"), ("DELETE", tid)]
    assert cf.tunnel_state(tid)["deleted"] is True
    assert cf.tunnel_state(keep)["deleted"] is False
    # Nothing of that name left: a no-op.
    assert ok(cf, "delete-tunnel", name) == {"deleted": [], "failed": []}


def test_fake_connector_sees_its_tunnel_deleted(cf):
    res = ok(cf, "create-tunnel", "dd-dev-agent-c", agent_host("dd-dev-agent-c"),
             8080, 8081, "")
    tid = cf.connect(token=res["token"])
    assert tid == res["id"]
    import urllib.request
    st = json.load(urllib.request.urlopen(f"{cf.url}/_ctl/tunnel/{tid}"))
    assert st == {"exists": True, "deleted": False, "connections": 1,
                  "name": "dd-dev-agent-c"}
    ok(cf, "delete-tunnel", "dd-dev-agent-c")
    st = json.load(urllib.request.urlopen(f"{cf.url}/_ctl/tunnel/{tid}"))
    assert st["deleted"] is True and st["connections"] == 0


def test_delete_cname_only_into_the_tunnel(cf):
    tid = cf.seed_tunnel("dd-dev-agent-u")
    cf.seed_dns(f"a.{DOMAIN}", "someone-else.cfargotunnel.com")
    assert ok(cf, "delete-cname", f"a.{DOMAIN}", tid) == {"deleted": []}
    assert f"a.{DOMAIN}" in cf.cnames()
    assert len(ok(cf, "delete-cname", f"a.{DOMAIN}")["deleted"]) == 1
    assert f"a.{DOMAIN}" not in cf.cnames()


# --- Access cleanup ----------------------------------------------------------

def seed_apps(cf, host):
    ids = {
        "exact": cf.seed_app("legacy-exact", host),
        "path": cf.seed_app("legacy-path", f"{host}/deploy"),
        "dest": cf.seed_app("legacy-dest", "elsewhere.org",
                            destinations=[{"type": "public", "uri": host}]),
        "shd": cf.seed_app("legacy-shd", "x.org",
                           self_hosted_domains=[{"domain": f"{host}/logs"}]),
        "wild": cf.seed_app("zone-wide", f"*.{DOMAIN}"),
        "other": cf.seed_app("unrelated", f"shop.{DOMAIN}"),
    }
    return ids


def test_access_strict_leaves_the_wildcard_alone(cf):
    host = agent_host("dd-dev-agent-u")
    ids = seed_apps(cf, host)
    res = ok(cf, "access-strict", "agent", host, "oracle")
    deleted = {a["id"] for a in res["deleted"]}
    assert deleted == {ids["exact"], ids["path"], ids["dest"], ids["shd"]}
    assert [a["id"] for a in res["left_alone"]] == [ids["wild"]]
    assert "wildcard" in res["left_alone"][0]["reason"]
    assert set(cf.apps) == {ids["wild"], ids["other"]}


def test_access_strict_fails_on_a_failed_delete(cf):
    host = agent_host("dd-dev-agent-u")
    a = cf.seed_app("legacy-1", host)
    cf.fail(f"access/apps/{a}", 500, count=5, method="DELETE")
    out = run(cf, "access-strict", "agent", host, "", DD_CF_ATTEMPTS=2)
    assert not out["ok"] and "-> 500" in out["error"]
    assert out["report"]["failed"][0]["id"] == a
    assert len(cf.calls("DELETE", "access/apps")) == 2


def test_access_lenient(cf):
    host = agent_host("dd-dev-agent-u")
    ids = seed_apps(cf, host)
    flat = cf.seed_app("legacy-flat", f"dd-dev-agent-u-oracle.{DOMAIN}")
    api = cf.seed_app("legacy-api", f"dd-dev-api-u.{DOMAIN}")
    res = ok(cf, "access-lenient", host)
    # Only the domain field counts; wildcards never match.
    assert {a["id"] for a in res["deleted"]} == {ids["exact"], ids["path"],
                                                 flat, api}
    assert ids["wild"] in cf.apps and ids["dest"] in cf.apps
    # Errors are swallowed.
    cf.fail("access/apps", 500, count=10)
    res = ok(cf, "access-lenient", host, DD_CF_ATTEMPTS=1)
    assert res["deleted"] == []


# --- snapshot and map --------------------------------------------------------

def fleet(cf, tmp_path):
    t_a = cf.seed_tunnel("dd-pr-7-agent-a")
    t_orphan = cf.seed_tunnel("dd-pr-7-agent-orphan")
    t_cp = cf.seed_tunnel("dd-pr-7-cp-1")
    cf.seed_tunnel("dd-pr-8-cp-2")
    cf.seed_dns(f"dd-pr-7-agent-a.{DOMAIN}", f"{t_a}.cfargotunnel.com")
    cf.seed_dns(f"stale.{DOMAIN}", f"{t_orphan}.cfargotunnel.com")
    cf.seed_dns(f"pr-7.{DOMAIN}", f"{t_cp}.cfargotunnel.com")
    cf.seed_dns(f"leak.{DOMAIN}", "gone.cfargotunnel.com")
    cf.seed_app("dd-pr-7-term", f"pr-7-term.{DOMAIN}",
                policies=[{"decision": "bypass"}])
    agents = [{"agent_id": "dd-pr-7-agent-a", "vm_name": "vm",
               "hostname": f"dd-pr-7-agent-a.{DOMAIN}", "status": "healthy",
               "last_seen": "2026-01-01T00:00:00Z", "tunnel_id": t_a,
               "extras": [["web", 9000]]}]
    p = tmp_path / "agents.json"
    p.write_text(json.dumps(agents))
    return str(p), t_orphan


def test_snapshot_drift(cf, tmp_path):
    agents, t_orphan = fleet(cf, tmp_path)
    s = ok(cf, "snapshot", "pr-7", f"pr-7.{DOMAIN}", agents)
    assert s["degraded"] is False and s["cf_fetch_errors"] == []
    d = s["drift"]
    assert [t["id"] for t in d["orphan_tunnels"]] == [t_orphan]
    assert [r["name"] for r in d["orphan_dns"]] == [f"stale.{DOMAIN}"]
    missing = {m["expected"] for m in d["missing_dns"]}
    assert f"dd-pr-7-agent-a-web.{DOMAIN}" in missing
    assert f"pr-7-shell.{DOMAIN}" in missing
    assert d["access_mismatch"][0]["actual_policy"] == "bypass"
    assert len(s["cf_state"]["tunnels"]) == 3


def test_snapshot_degraded_computes_no_drift(cf, tmp_path):
    agents, _ = fleet(cf, tmp_path)
    cf.fail("cfd_tunnel", 503, count=10)
    s = ok(cf, "snapshot", "pr-7", f"pr-7.{DOMAIN}", agents, DD_CF_ATTEMPTS=2)
    assert s["degraded"] is True and s["cf_api_reachable"] is True
    assert len(s["cf_fetch_errors"]) == 1
    assert s["cf_fetch_errors"][0].startswith("tunnels: CF GET /accounts/")
    assert all(v == [] for v in s["drift"].values())
    # The other two lists still answered.
    assert s["cf_state"]["apps"] != []


def test_map_groups_by_installation(cf, tmp_path):
    agents, _ = fleet(cf, tmp_path)
    m = ok(cf, "map", "pr-7", f"pr-7.{DOMAIN}", agents)
    envs = [i["env"] for i in m["installations"]]
    assert envs == ["pr-7", "pr-8", "(unattributed)"]
    by = {i["env"]: i for i in m["installations"]}
    assert by["pr-7"]["is_serving_env"] and by["pr-7"]["known_agents"] == 1
    assert by["pr-8"]["has_live_cp"] and by["pr-8"]["known_agents"] == 0
    assert [r["name"] for r in by["(unattributed)"]["dns"]] == [f"leak.{DOMAIN}"]
    cf.fail("access/apps", 500, count=10)
    m = ok(cf, "map", "pr-7", f"pr-7.{DOMAIN}", agents, DD_CF_ATTEMPTS=1)
    assert m["degraded"] is True
    assert m["cf_fetch_errors"][0].startswith("apps: ")


# --- the CP's views over HTTP (src/cp/cp_cf.c) -------------------------------

def test_views_served_from_the_fleet_store(cf, tmp_path):
    from conftest import Server
    import urllib.request
    agents, t_orphan = fleet(cf, tmp_path)
    env = dict(cf.env())
    env.update({"DD_CF_BACKOFF_MS": "20", "DD_CF_ATTEMPTS": "2"})
    srv = Server([CFTOOL, "serve", "pr-7", f"pr-7.{DOMAIN}", agents], env=env)
    try:
        def get(path):
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{srv.port}{path}", timeout=30) as r:
                assert r.status == 200
                return json.load(r)
        s = get("/admin/cf/snapshot")
        assert s["degraded"] is False
        assert s["cp_state"]["env_label"] == "pr-7"
        a = s["cp_state"]["agents"]
        assert [x["agent_id"] for x in a] == ["dd-pr-7-agent-a"]
        assert a[0]["extras"] == [["web", 9000]]
        assert [t["id"] for t in s["drift"]["orphan_tunnels"]] == [t_orphan]
        assert s["cf_account_id"] == cf.account
        m = get("/admin/cf/map")
        assert m["serving_env"] == "pr-7"
        assert [i["env"] for i in m["installations"]][-1] == "(unattributed)"
        # Cloudflare failing makes the answer degraded, still 200.
        cf.fail("dns_records", 500, count=10)
        s = get("/admin/cf/snapshot")
        assert s["degraded"] is True and s["drift"]["orphan_tunnels"] == []
        assert s["cf_fetch_errors"][0].startswith("dns: ")
        # A request still waiting for Cloudflare at shutdown is answered.
        cf.fail("cfd_tunnel", None, delay=3, count=1)
        import threading
        got = {}

        def slow():
            try:
                got["s"] = get("/admin/cf/snapshot")
            except Exception as e:  # noqa: BLE001 - reported below
                got["e"] = e
        th = threading.Thread(target=slow)
        th.start()
        time.sleep(0.5)
    finally:
        srv.assert_clean_exit()
    th.join(10)
    # Drained (the server waits for it) or cut short with the lists
    # cancelled: answered either way, never left hanging.
    assert "s" in got, got
