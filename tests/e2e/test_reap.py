"""Orphan reaping end to end: a real CP (`devopsdefender cp`) against the
fake Cloudflare API (fake_cf.py) with the fake cloudflared, its store
seeded through hydrate from a scripted predecessor (so a dead agent and a
live one exist without racing registrations).

Checked: a dead agent loses its tunnel (connections dropped before the
delete), every CNAME pointing at it and its legacy Access app; an unknown
agent tunnel past the grace goes the same way, while a young one, one with
a live connector, other envs' tunnels, the CP's tunnel, a live agent's
tunnel, foreign records and wildcard apps stay; nothing is deleted while
the tunnel listing fails or comes back partial, or while the CNAME listing
fails; and a CP that is not the serving CP of its env (a newer CP tunnel
is listed) deletes nothing at all."""
import datetime
import json
import os
import re
import time
import uuid

import pytest

import fakehttp
from conftest import DD_BIN, closed_port, wait_for
from fake_cf import FakeCF

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = "pr-7"
DOMAIN = "example.com"
CP_HOST = f"{ENV}.{DOMAIN}"


@pytest.fixture
def cf():
    fake = FakeCF(token="tok-reap-e2e-4e07408562bedb8b60ce05c1decfe3ad")
    fake.start()
    yield fake
    fake.stop()


def iso(ago_s):
    t = datetime.datetime.now(datetime.timezone.utc) - \
        datetime.timedelta(seconds=ago_s)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(agent_id, last_seen_ago, ingress, tunnel_id=None, extras=()):
    r = {"agent_id": agent_id, "hostname": f"{agent_id}.{DOMAIN}",
         "vm_name": "vm-" + agent_id[-8:], "env": ENV,
         "attestation_type": "tdx", "status": "healthy",
         "last_seen": iso(last_seen_ago), "registered_at": iso(7200),
         "agent_mode": "read_write", "integrity_state": "controlled",
         "owner": None, "deployment_count": 0, "deployment_names": [],
         "unit_count": 0, "units": [], "cpu_percent": 0,
         "memory_used_mb": 0, "memory_total_mb": 0, "nets": [], "disks": [],
         "ita": {"exp": 0, "iat": 0, "tcb_status": "UpToDate",
                 "attester_type": "TDX", "mrtd": "", "mrsigner": "",
                 "report_data": "", "extra": {}},
         "extras": [list(e) for e in extras], "oracles": [],
         "ingress": ingress}
    if tunnel_id:
        r["tunnel_id"] = tunnel_id
    return r


class _PredecessorHandler(fakehttp.Handler):
    def do_GET(self):
        if self.path.startswith("/register/nonce"):
            self.send(200, {"nonce": "ab" * 32, "expires_in": 120})
        elif self.path.startswith("/api/v1/admin/export"):
            self.send(200, self.fake.export)
        else:
            self.send_error(404)


class Predecessor(fakehttp.FakeServer):
    """Plays the old CP for hydrate: a nonce, then the export."""

    def __init__(self, agents):
        self.export = json.dumps({"agents": agents}).encode()
        self.serve(_PredecessorHandler, name="fake-predecessor")


def agent_name(env=ENV):
    return f"dd-{env}-agent-{uuid.uuid4()}"


def api_host(name):
    base = name.replace("-agent-", "-api-", 1)
    return f"{base}.{DOMAIN}"


def cname(cf, host, tid):
    return cf.seed_dns(host, f"{tid}.cfargotunnel.com")


def start_cp(start, cf, ita_env, tmp_path, agents, **extra):
    pred = Predecessor(agents)
    env = dict(ita_env)
    env.update(cf.env())
    env.update({
        "DD_ENV": ENV, "DD_HOSTNAME": CP_HOST, "DD_VM_NAME": "reap-cp",
        "DD_CF_CP_EXTRAS": "shell:7682", "DD_CF_TIMEOUT_MS": "2000",
        "DD_CF_ATTEMPTS": "2", "DD_CF_MAX_WAIT_MS": "100",
        "DD_CLOUDFLARED_PATH": os.path.join(HERE, "fake_cloudflared.py"),
        "DD_CLOUDFLARED_BACKOFF_MS": "200",
        "DD_STONITH_EVICT_DELAY_MS": "200", "DD_STONITH_POLL_MS": "500",
        "DD_POWEROFF_MARKER": str(tmp_path / "poweroff"),
        "FAKE_CF_CTL": cf.url,
        "FAKE_CLOUDFLARED_LOG": str(tmp_path / "cloudflared"),
        "DD_PREDECESSOR_URL": pred.url,
        "DD_SCRAPE_INTERVAL": "1",
        "DD_CF_REAP_INTERVAL_SECS": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    try:
        srv = start([DD_BIN, "cp"], env)
    finally:
        pred.stop()
    return srv


def deletes(cf):
    return [(c["method"], c["path"]) for c in cf.calls()
            if c["method"] == "DELETE"]


def agent_deletes(cf, ids):
    return [d for d in deletes(cf) if any(i in d[1] for i in ids)]


def alive(cf, tid):
    st = cf.tunnel_state(tid)
    return st["exists"] and not st["deleted"]


def listings(cf):
    """Tunnel listings so far (the reaper lists once per pass)."""
    return len(cf.calls("GET", r"/cfd_tunnel$"))


def test_dead_and_unknown_agents_are_reaped(start, cf, ita_env, tmp_path):
    # A dead agent: scraped at a closed port, silent for two hours.
    dead = agent_name()
    dead_tid = cf.seed_tunnel(dead, created_at=iso(7200))
    cf.connect(dead_tid)  # its connector is still up
    dead_dns = [cname(cf, f"{dead}.{DOMAIN}", dead_tid),
                cname(cf, api_host(dead), dead_tid),
                cname(cf, f"{dead}-oracle.{DOMAIN}", dead_tid)]
    dead_app = cf.seed_app("legacy", domain=f"{dead}.{DOMAIN}")
    # A live agent (tunnel ingress, seen a minute ago): stays.
    live = agent_name()
    live_tid = cf.seed_tunnel(live, created_at=iso(7200))
    live_dns = cname(cf, f"{live}.{DOMAIN}", live_tid)
    live_app = cf.seed_app("legacy-live", domain=f"{live}.{DOMAIN}")
    # An unknown agent tunnel past the grace, and a young one.
    old = agent_name()
    old_tid = cf.seed_tunnel(old, created_at=iso(3600))
    old_dns = [cname(cf, f"{old}.{DOMAIN}", old_tid),
               cname(cf, api_host(old), old_tid)]
    old_app = cf.seed_app("legacy-old", domain=f"{old}.{DOMAIN}/health")
    young = agent_name()
    young_tid = cf.seed_tunnel(young, created_at=iso(60))
    young_dns = cname(cf, f"{young}.{DOMAIN}", young_tid)
    # Unknown but connected: a live agent this CP lost; it registers again.
    lost = agent_name()
    lost_tid = cf.seed_tunnel(lost, created_at=iso(3600))
    cf.connect(lost_tid)
    lost_dns = cname(cf, f"{lost}.{DOMAIN}", lost_tid)
    # Another env's agent, a name of env "pr-7-agent-x", foreign records.
    other = agent_name("pr-8")
    other_tid = cf.seed_tunnel(other, created_at=iso(7200))
    other_dns = cname(cf, f"{other}.{DOMAIN}", other_tid)
    tricky = f"dd-{ENV}-agent-x-agent-{uuid.uuid4()}"  # env pr-7-agent-x
    tricky_tid = cf.seed_tunnel(tricky, created_at=iso(7200))
    foreign_dns = cf.seed_dns(f"www.{DOMAIN}", "elsewhere.example.net")
    wild_app = cf.seed_app("wild", domain=f"*.{DOMAIN}")

    cp = start_cp(start, cf, ita_env, tmp_path, [
        record(dead, 7200, {"kind": "direct",
                            "url": f"http://127.0.0.1:{closed_port()}"},
               extras=[("oracle", 8082)]),
        record(live, 60, {"kind": "tunnel"}, tunnel_id=live_tid)])
    assert "hydrated 2 agents" in cp.output(), cp.output()[-3000:]

    wait_for(lambda: not alive(cf, dead_tid) and not alive(cf, old_tid)
             and not cf.dns.get(dead_dns[2]) and old_app not in cf.apps,
             what="the dead and the unknown agent reaped")
    # Connections first, then the tunnel, for both.
    for tid in (dead_tid, old_tid):
        mine = [p for m, p in deletes(cf) if tid in p]
        assert mine[0].endswith(f"/cfd_tunnel/{tid}/connections"), mine
        assert mine[1].endswith(f"/cfd_tunnel/{tid}"), mine
    for rid in dead_dns + old_dns:
        assert rid not in cf.dns
    assert dead_app not in cf.apps
    wait_for(lambda: f"reap: unknown tunnel {old}" in cp.output(),
             what="the outcome logged")
    out = cp.output()
    # Not yet serving at the first ticks (the dead agent was queued then):
    # nothing before STONITH's eviction pass had finished.
    assert f"reap: dead agent {dead} queued" in out
    order = [out.index("reap: holding, nothing is deleted: not the "
                       "serving CP"),
             out.index("stonith: eviction done"),
             out.index("reap: active"),
             out.index(f"reap: dead agent {dead} (")]
    assert order == sorted(order), out[-4000:]
    assert re.search(f"reap: dead agent {dead} .*: tunnel deleted, 3 CNAMEs,"
                     " 1 Access apps deleted, 0 failures", out), out[-4000:]
    assert re.search(f"reap: unknown tunnel {old} .*: tunnel deleted, 2 "
                     "CNAMEs, 1 Access apps deleted, 0 failures", out)

    # A few more passes change nothing else.
    n = listings(cf)
    wait_for(lambda: listings(cf) >= n + 3, what="more passes")
    for tid in (live_tid, young_tid, lost_tid, other_tid, tricky_tid):
        assert alive(cf, tid), cf.tunnel_state(tid)
    for rid in (live_dns, young_dns, lost_dns, other_dns, foreign_dns):
        assert rid in cf.dns
    assert live_app in cf.apps and wild_app in cf.apps
    # The CP's own tunnel and hostname.
    assert CP_HOST in cf.cnames()
    own = [t for t in cf.live_tunnels() if t.startswith(f"dd-{ENV}-cp-")]
    assert len(own) == 1
    assert not agent_deletes(cf, [live_tid, young_tid, lost_tid, other_tid,
                                  tricky_tid, live_dns, young_dns, lost_dns,
                                  other_dns, foreign_dns, live_app,
                                  wild_app])
    assert "1 unknown agent tunnels have a connector; kept" in out
    secret = cf.token
    assert secret not in out


def test_degraded_listing_reaps_nothing(start, cf, ita_env, tmp_path):
    cp = start_cp(start, cf, ita_env, tmp_path, [])
    wait_for(lambda: "reap: active" in cp.output(), what="serving")
    # The tunnel listing fails from now on (STONITH's own reads differ).
    cf.fail(r"^/accounts/[^/]+/cfd_tunnel\?", method="GET", status=500,
            count=10 ** 9)
    old = agent_name()
    old_tid = cf.seed_tunnel(old, created_at=iso(3600))
    old_dns = cname(cf, f"{old}.{DOMAIN}", old_tid)
    wait_for(lambda: "Cloudflare view degraded: tunnels" in cp.output(),
             what="a degraded pass", srv=cp)
    n = listings(cf)
    wait_for(lambda: listings(cf) >= n + 6, what="more failed listings")
    assert alive(cf, old_tid) and old_dns in cf.dns
    assert not agent_deletes(cf, [old_tid, old_dns])

    # A partial listing: page 2 of the tunnels fails.
    for i in range(210):
        cf.seed_tunnel(f"dd-pr-9-agent-{uuid.uuid4()}", created_at=iso(60))
    with cf._lock:
        cf._faults.clear()
    cf.fail(r"^/accounts/[^/]+/cfd_tunnel\?.*\bpage=2\b", method="GET",
            status=502, count=10 ** 9)
    def second_pages():
        return len([c for c in cf.calls("GET", r"/cfd_tunnel$")
                    if c["query"].get("page") == "2"])
    n = second_pages()
    wait_for(lambda: second_pages() >= n + 6, what="partial listings")
    assert alive(cf, old_tid) and old_dns in cf.dns
    assert not agent_deletes(cf, [old_tid, old_dns])

    # The tunnels list, the CNAMEs do not: still nothing.
    with cf._lock:
        cf._faults.clear()
    cf.fail(r"^/zones/[^/]+/dns_records\?", method="GET", status=500,
            count=10 ** 9)
    wait_for(lambda: "Cloudflare view degraded: CNAMEs" in cp.output(),
             what="a pass without CNAMEs")
    n = len(cf.calls("GET", r"/dns_records$"))
    wait_for(lambda: len(cf.calls("GET", r"/dns_records$")) >= n + 4,
             what="more failed CNAME listings")
    assert alive(cf, old_tid) and old_dns in cf.dns
    assert not agent_deletes(cf, [old_tid, old_dns])

    # Whole again: the orphan goes.
    with cf._lock:
        cf._faults.clear()
    wait_for(lambda: not alive(cf, old_tid) and old_dns not in cf.dns,
             what="the orphan reaped once the view is whole")


def test_not_the_serving_cp_reaps_nothing(start, cf, ita_env, tmp_path):
    # A CP tunnel of our env newer than ours: that CP serves, not us.
    newer = cf.seed_tunnel(f"dd-{ENV}-cp-{uuid.uuid4()}",
                           created_at=iso(-3600))
    dead = agent_name()
    dead_tid = cf.seed_tunnel(dead, created_at=iso(7200))
    old = agent_name()
    old_tid = cf.seed_tunnel(old, created_at=iso(3600))
    cp = start_cp(start, cf, ita_env, tmp_path, [
        record(dead, 7200, {"kind": "direct",
                            "url": f"http://127.0.0.1:{closed_port()}"})])
    wait_for(lambda: "is newer than ours" in cp.output(),
             what="STONITH to see the newer CP")
    wait_for(lambda: f"{dead} is dead" in cp.output(),
             what="the agent declared dead")
    wait_for(lambda: "nothing is deleted: not the serving CP"
             in cp.output(), what="the reaper holding")
    time.sleep(4)  # several ticks and reap intervals
    assert alive(cf, dead_tid) and alive(cf, old_tid) and alive(cf, newer)
    assert not agent_deletes(cf, [dead_tid, old_tid, newer])
    # It never even listed for reaping: the decision is local.
    assert "reap: active" not in cp.output()
