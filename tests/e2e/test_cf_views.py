"""GET /admin/cf/snapshot and /admin/cf/map on a real CP configured for
Cloudflare (the fake API, fake_cf.py, and the fake cloudflared): who may
ask, and what the CP's own tunnel looks like in the views."""
import os

import pytest

from conftest import DD_BIN, request, wait_for
from fake_cf import FakeCF
from fake_oidc import FakeOIDC

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "example.com"


@pytest.fixture
def cf():
    fake = FakeCF(token="tok-views-e2e-2c26b46b68ffc68ff99b453c1d304134")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def oidc():
    o = FakeOIDC().start()
    yield o
    o.stop()


def start_cp(start, cf, oidc, ita_env, tmp_path):
    env = dict(ita_env)
    env.update(cf.env())
    env.update(oidc.env())
    env.update({
        "DD_ENV": "pr-7", "DD_HOSTNAME": f"pr-7.{DOMAIN}",
        "DD_CF_CP_EXTRAS": "shell:7682", "DD_CF_TIMEOUT_MS": "2000",
        "DD_CF_ATTEMPTS": "2", "DD_CF_MAX_WAIT_MS": "100",
        "DD_CLOUDFLARED_PATH": os.path.join(HERE, "fake_cloudflared.py"),
        "DD_POWEROFF_MARKER": str(tmp_path / "poweroff"),
        "FAKE_CF_CTL": cf.url,
        "FAKE_CLOUDFLARED_LOG": str(tmp_path / "cloudflared"),
    })
    return start([DD_BIN, "cp"], env)


def get(srv, path, token=None):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    return request(srv.port, "GET", path, h)


def test_views_on_a_real_cp(start, cf, oidc, ita_env, tmp_path):
    orphan = cf.seed_tunnel("dd-pr-7-agent-orphan")
    cf.seed_dns(f"stale.{DOMAIN}", f"{orphan}.cfargotunnel.com")
    cp = start_cp(start, cf, oidc, ita_env, tmp_path)
    # The CP's own tunnel and CNAMEs appear once it is serving.
    # (The primary's CNAME is written first, the -shell one last.)
    wait_for(lambda: f"pr-7-shell.{DOMAIN}" in cf.cnames(),
             what="the CP's CNAMEs")
    # A CI token is single-use (its jti): a fresh one per request.
    def owner():
        return oidc.token("acme", 4242)

    # Fleet admins and the owner only.
    assert get(cp, "/admin/cf/snapshot").status == 401
    assert get(cp, "/admin/cf/map").status == 401
    assert get(cp, "/admin/cf/snapshot",
               oidc.token("evil", 666)).status in (401, 403)

    r = get(cp, "/admin/cf/snapshot", owner())
    assert r.status == 200, r.body
    s = r.json()
    assert s["degraded"] is False and s["cf_account_id"] == cf.account
    assert s["cp_state"]["control_plane_hostname"] == f"pr-7.{DOMAIN}"
    names = {t["name"] for t in s["cf_state"]["tunnels"]}
    assert any(n.startswith("dd-pr-7-cp-") for n in names)
    d = s["drift"]
    # The CP's tunnel is never an orphan; the seeded agent tunnel is.
    assert [t["id"] for t in d["orphan_tunnels"]] == [orphan]
    assert [x["name"] for x in d["orphan_dns"]] == [f"stale.{DOMAIN}"]
    # The CP's own hostnames (primary and -shell) are expected, not orphans.
    assert all(m["expected"] != f"pr-7-shell.{DOMAIN}"
               for m in d["missing_dns"])

    r = get(cp, "/admin/cf/map", owner())
    assert r.status == 200, r.body
    m = r.json()
    by = {i["env"]: i for i in m["installations"]}
    assert by["pr-7"]["is_serving_env"] and by["pr-7"]["has_live_cp"]

    # Cloudflare failing: still 200, degraded, no drift.
    cf.fail("access/apps", 500, count=10)
    s = get(cp, "/admin/cf/snapshot", owner()).json()
    assert s["degraded"] is True
    assert all(v == [] for v in s["drift"].values())
    assert s["cf_fetch_errors"][0].startswith("apps: ")
