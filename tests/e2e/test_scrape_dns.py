"""Tunnel agents' scrapes resolve through the collector's own resolver
(spec integrations.md 3.4), not the OS: a real CP with the fake
Cloudflare API, a real agent behind the fake cloudflared, the TLS fake
edge of test_cf_scrape.py, and a fake DNS server (fake_dns.py) as
DD_SCRAPE_DNS. The fake DNS answers the agent's -api- name with
127.0.0.1, where the edge listens; DD_COLLECT_EDGE_PORT (dev only) sends
the pinned request to the edge's port. The URL, Host, SNI and the
certificate check stay the -api- name's.

Checked: while the name is NXDOMAIN the agent stays registering (a DNS
failure; with DD_SCRAPE_GRACE=0 any other failure would make it stale)
and the edge sees nothing; the CP asked our server, A and AAAA; once the
name exists (behind a truncated UDP reply, so over TCP) the very next
ticks find it (no negative cache) and the agent turns healthy through the
edge; when the name goes, the failures are DNS failures again. And the
variables are checked at boot."""
from fake_dns import A, AAAA, FakeDNS
from test_cf_register import (api_host, cf, fleet, health, ita,  # noqa: F401 (fixtures)
                              oidc, start_agent, start_cp, wait_for)
from test_cf_scrape import FakeEdge, certs, run_cp, status


def last_error(cp, aid):
    a = fleet(cp).get(aid)
    return (a or {}).get("last_error") or ""


def test_tunnel_scrapes_resolve_through_the_scrape_dns(
        start, cf, ita, oidc, tmp_path):
    paths = certs(tmp_path)
    edge = FakeEdge(paths)
    dns = FakeDNS()
    try:
        cp = start_cp(start, cf, ita, oidc, tmp_path,
                      DD_CA_FILE=paths["ca.pem"],
                      DD_SCRAPE_DNS=dns.server,
                      DD_COLLECT_EDGE_PORT=str(edge.port),
                      DD_SCRAPE_INTERVAL="1", DD_SCRAPE_GRACE="0")
        agent = start_agent(start, cf, ita, oidc, tmp_path, cp,
                            DD_VM_NAME="vm-1")
        aid = wait_for(lambda: health(agent)["agent_id"],
                       what="registration")
        host = api_host(aid)
        with edge.lock:
            edge.routes[host] = agent.ports["api"]

        # Not in the DNS yet: NXDOMAIN, and the agent stays registering.
        wait_for(lambda: dns.count(host) >= 4, timeout=20,
                 what="two ticks' questions for the -api- name")
        err = wait_for(lambda: last_error(cp, aid), timeout=20,
                       what="a failed scrape")
        assert "could not resolve" in err and "dns error" in err, err
        assert status(cp, aid) == "registering"
        assert edge.hosts() == []
        assert {q for n, q, _ in dns.seen if n == host} == {A, AAAA}

        # The name appears (UDP says truncated: TCP); no negative cache.
        dns.set(host, a=["127.0.0.1"], tc=True)
        wait_for(lambda: status(cp, aid) == "healthy", timeout=20,
                 what="the agent healthy through the edge")
        assert dns.count(host, "tcp") >= 2
        assert host in edge.hosts()

        # Gone again: the scrapes fail as DNS failures, the edge unasked.
        dns.remove(host)
        wait_for(lambda: "could not resolve" in last_error(cp, aid),
                 timeout=20, what="the DNS failure recorded")
        assert f"could not resolve {host}: dns error" in last_error(cp, aid)
    finally:
        edge.stop()
        dns.stop()


def test_scrape_dns_variables_are_checked_at_boot():
    r = run_cp(DD_SCRAPE_DNS="1.2.3")
    assert r.returncode != 0
    assert "DD_SCRAPE_DNS: not an IP address" in r.stderr + r.stdout
    r = run_cp(DD_SCRAPE_DNS="1.1.1.1,[::1]:0")
    assert r.returncode != 0
    assert "DD_SCRAPE_DNS: bad port" in r.stderr + r.stdout
    r = run_cp(DD_DEV="0", DD_COLLECT_EDGE_PORT="8443")
    assert r.returncode != 0
    assert ("DD_COLLECT_EDGE_PORT: is a test and development facility "
            "(needs DD_DEV=1)") in r.stderr + r.stdout
