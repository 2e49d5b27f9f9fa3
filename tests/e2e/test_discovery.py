"""The collector's Cloudflare discovery and sharding (spec integrations.md
3.2-3.6, http-surface.md 6.3 and 6.9; docs/collector.md "Discovery",
"Sharding"): a real CP against the fake Cloudflare API (fake_cf.py) and
a fake edge (test_cf_scrape.FakeEdge: TLS with a *.example.com
certificate, routing each -api- Host to an agent's API port), reached
through DD_COLLECT_CONNECT_TO.

The tunnels here are seeded straight into the fake Cloudflare, as a CP
that lost its store would find them: agents that registered with a
predecessor. Each routes at the edge to a real agent that never
registers with this CP (its DD_CP_URL is a closed port) but serves a
genuine /health with an ITA token from the same fake ITA. Each seeded
tunnel has a connector, so the reaper (cp_reap) leaves it alone.

Checked: an unknown tunnel's agent is scraped and adopted, keyed by the
tunnel, within a discovery interval, then scraped as a known agent; a
tunnel younger than 120 s is never contacted; a failing listing adopts
nothing, and the next good one does; with DD_SCRAPER_SHARD_TOTAL=2 a CP
scrapes and adopts only its shard's tunnels (by the spec's rendezvous);
and an index outside the shards is refused at boot."""
import datetime
import hashlib
import secrets
import time
import types

from conftest import closed_port
from test_cf_register import (DOMAIN, ENV, api_host, cf, fleet, health,  # noqa: F401 (fixtures)
                              ita, oidc, start_agent, start_cp, wait_for)
from test_cf_scrape import FakeEdge, certs, run_cp


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def shard_of(key, total):
    """The spec's rendezvous (integrations.md 3.3), written again here
    so the test does not take the CP's word for it."""
    best, best_score = 0, 0
    for s in range(total):
        score = fnv1a64(key.encode() + s.to_bytes(8, "little"))
        if s == 0 or score > best_score:
            best, best_score = s, score
    return best


def test_the_shard_function_matches_the_spec_vectors():
    assert fnv1a64(b"") == 0xcbf29ce484222325
    assert fnv1a64(b"a") == 0xaf63dc4c8601ec8c
    assert fnv1a64(b"foobar") == 0x85944171f73967e8
    want = {"agent-a": [1, 2, 2], "agent-b": [0, 2, 2],
            "agent-c": [0, 0, 0], "agent-d": [0, 0, 0]}
    for k, v in want.items():
        assert [shard_of(k, t) for t in (2, 3, 4)] == v


def lone_agent(start, cf, ita, oidc, tmp_path, vm):
    """A real agent whose CP never answers: it serves /health (with its
    token) but is in no store."""
    nowhere = types.SimpleNamespace(port=closed_port())
    agent = start_agent(start, cf, ita, oidc, tmp_path, nowhere,
                        DD_VM_NAME=vm, DD_REGISTER_BACKOFF_MS="1000")
    wait_for(lambda: health(agent).get("ita_token"), timeout=20,
             what="the agent's token")
    return agent


def iso_ago(secs):
    t = datetime.datetime.now(datetime.timezone.utc) - \
        datetime.timedelta(seconds=secs)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unknown_tunnel(cf, edge, agent, age_secs, name=None):
    """A connected agent tunnel of our env created age_secs ago, routed
    at the edge to agent: (name, tunnel id)."""
    name = name or f"dd-{ENV}-agent-{secrets.token_hex(8)}"
    tid = cf.seed_tunnel(name, created_at=iso_ago(age_secs))
    cf.connect(tid)
    with edge.lock:
        edge.routes[api_host(name)] = agent.ports["api"]
    return name, tid


def start_discovering_cp(start, cf, ita, oidc, tmp_path, paths, edge,
                         **extra):
    env = {"DD_CA_FILE": paths["ca.pem"],
           "DD_COLLECT_CONNECT_TO": f"127.0.0.1:{edge.port}",
           "DD_SCRAPE_INTERVAL": "1", "DD_DISCOVERY_INTERVAL": "2",
           "DD_STONITH_EVICT_DELAY_MS": "200", "DD_STONITH_POLL_MS": "500"}
    env.update(extra)
    return start_cp(start, cf, ita, oidc, tmp_path, **env)


def scraped(edge, name):
    return edge.hosts().count(api_host(name))


def test_an_unknown_tunnel_is_discovered_and_adopted_a_young_one_left_alone(
        start, cf, ita, oidc, tmp_path):
    paths = certs(tmp_path)
    edge = FakeEdge(paths)
    try:
        agent = lone_agent(start, cf, ita, oidc, tmp_path, "vm-lost")
        old, old_tid = unknown_tunnel(cf, edge, agent, 300)
        young, _ = unknown_tunnel(cf, edge, agent, 0)
        # A tunnel named as registration names this agent: by its key.
        pub = health(agent)["noise"]["pubkey_hex"]
        own, _ = unknown_tunnel(cf, edge, agent, 300, name=(
            f"dd-{ENV}-agent-"
            + hashlib.sha256(bytes.fromhex(pub)).hexdigest()[:16]))
        t0 = time.monotonic()
        cp = start_discovering_cp(start, cf, ita, oidc, tmp_path, paths,
                                  edge)
        a = wait_for(lambda: fleet(cp).get(old), timeout=20, srv=cp,
                     what="the unknown tunnel's agent adopted")
        # Within a discovery interval of the CP being up (2 s here; the
        # bound allows for a loaded machine and the CP's own boot).
        assert time.monotonic() - t0 < 20
        assert a["status"] == "healthy"
        # Keyed by the tunnel, never by what the agent calls itself.
        assert health(agent)["agent_id"] != old
        assert a["hostname"] == f"{old}.{DOMAIN}"
        assert a["tunnel_id"] == old_tid
        assert a["ingress"]["kind"] == "tunnel"
        assert a["vm_name"] == "vm-lost"
        assert f"discovery: {old} adopted (tunnel {old_tid}" in cp.output()
        # The published Noise key is kept only where the name commits to
        # it (so /ingress/replace can check the agent's evidence).
        assert a["noise_pubkey"] is None
        b = wait_for(lambda: fleet(cp).get(own), timeout=20, srv=cp,
                     what="the key-named tunnel's agent adopted")
        assert b["noise_pubkey"] == pub
        # Then it is a known agent: scraped every tick, not every listing.
        n = scraped(edge, old)
        wait_for(lambda: scraped(edge, old) >= n + 3, timeout=20,
                 what="the adopted agent scraped on ordinary ticks")
        assert fleet(cp)[old]["status"] == "healthy"
        # The young tunnel: several discovery ticks, never contacted.
        wait_for(lambda: cp.output().count(
            f"discovery: {young}: pending registration") >= 3, timeout=20,
            srv=cp, what="the young tunnel passed over three times")
        assert scraped(edge, young) == 0
        assert young not in fleet(cp)
        assert "preserving tunnel" in cp.output()
        assert not cf.tunnel_state(cf.live_tunnels()[young])["deleted"]
    finally:
        edge.stop()


def tunnel_lists(cf):
    # C1 (every page, no name): STONITH and the reaper list the same way.
    return [c for c in cf.calls("GET", r"/cfd_tunnel$")
            if "name" not in c["query"]]


def test_a_failed_listing_adopts_nothing(start, cf, ita, oidc, tmp_path):
    paths = certs(tmp_path)
    edge = FakeEdge(paths)
    try:
        agent = lone_agent(start, cf, ita, oidc, tmp_path, "vm-outage")
        cp = start_discovering_cp(start, cf, ita, oidc, tmp_path, paths,
                                  edge, DD_DISCOVERY_INTERVAL="1")
        wait_for(lambda: len(tunnel_lists(cf)) >= 2,
                 what="listings going on")
        before = fleet(cp)
        # Cloudflare fails every listing from now on (status 500); the
        # tunnel appears only after any listing already being served.
        cf.fail(r"/cfd_tunnel\?(?!.*name=)", status=500,
                count=10 ** 6, method="GET")
        time.sleep(0.5)
        name, _ = unknown_tunnel(cf, edge, agent, 300)
        wait_for(lambda: cp.output().count(
            "discovery: listing Cloudflare's tunnels failed") >= 3,
            timeout=30, srv=cp, what="three failed listings")
        assert scraped(edge, name) == 0
        after = fleet(cp)
        assert set(after) == set(before)
        assert {k: v["status"] for k, v in after.items()} == \
            {k: v["status"] for k, v in before.items()}
        # Cloudflare comes back: the next listing finds it.
        with cf._lock:
            cf._faults.clear()
        wait_for(lambda: (fleet(cp).get(name) or {}).get("status") ==
                 "healthy", timeout=20, srv=cp,
                 what="adopted once the listing works")
    finally:
        edge.stop()


def test_a_sharded_cp_scrapes_only_its_shard(start, cf, ita, oidc, tmp_path):
    paths = certs(tmp_path)
    edge = FakeEdge(paths)
    try:
        agent = lone_agent(start, cf, ita, oidc, tmp_path, "vm-shard")
        names = {0: [], 1: []}
        while min(len(v) for v in names.values()) < 2:
            n = f"dd-{ENV}-agent-{secrets.token_hex(8)}"
            if len(names[shard_of(n, 2)]) < 2:
                names[shard_of(n, 2)].append(n)
        for group in names.values():
            for n in group:
                unknown_tunnel(cf, edge, agent, 300, name=n)
        cp = start_discovering_cp(start, cf, ita, oidc, tmp_path, paths,
                                  edge, DD_SCRAPER_SHARD_TOTAL="2",
                                  DD_SCRAPER_SHARD_INDEX="1")
        for n in names[1]:
            wait_for(lambda: (fleet(cp).get(n) or {}).get("status") ==
                     "healthy", timeout=20, srv=cp,
                     what=f"{n} (shard 1) adopted")
        # More discovery ticks: the other shard's are never reached.
        k = len(tunnel_lists(cf))
        wait_for(lambda: len(tunnel_lists(cf)) >= k + 3 and scraped(
            edge, names[1][0]) >= 3, timeout=20, what="more ticks")
        for n in names[0]:
            assert n not in fleet(cp)
        assert set(edge.hosts()) == {api_host(n) for n in names[1]}
    finally:
        edge.stop()


def test_a_shard_index_outside_the_shards_is_refused_at_boot():
    r = run_cp(DD_DEV="1", DD_SCRAPER_SHARD_TOTAL="2",
               DD_SCRAPER_SHARD_INDEX="2")
    assert r.returncode != 0
    assert ("DD_SCRAPER_SHARD_INDEX: must be less than "
            "DD_SCRAPER_SHARD_TOTAL (2), got 2") in r.stderr + r.stdout
    r = run_cp(DD_DEV="1", DD_SCRAPER_SHARD_TOTAL="0")
    assert r.returncode != 0
    assert "DD_SCRAPER_SHARD_TOTAL" in r.stderr + r.stdout
