"""The collector scrapes agents registered through Cloudflare (issue 8):
a real CP with the fake Cloudflare API (fake_cf.py) and real agents
running the fake cloudflared, as in test_cf_register.py, plus a fake
Cloudflare edge here: a TLS server holding a certificate for
*.{DOMAIN} from a test CA (the CP trusts it through DD_CA_FILE) that
routes each request by its Host header to that agent's API listener, as
the agent's tunnel would, and answers 530 (origin unreachable) when the
agent is gone. The CP reaches it through DD_COLLECT_CONNECT_TO, so the
request is still https://{api hostname}/health and the certificate is
still checked against that name.

Checked: both tunnel agents turn healthy; the edge saw GET /health with
Host = each agent's -api- hostname and no Authorization; a stopped agent
goes stale, then dead, and the reaper then drops its tunnel's
connections, deletes the tunnel and its CNAMEs while the live agent's
stay; a certificate for another name is refused (no agent turns
healthy); a tunnel agent whose hostname yields no API hostname is
skipped with one warning; and DD_COLLECT_CONNECT_TO is refused outside
dev mode."""
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

from cryptography import x509

from conftest import BASE_ENV, DD_BIN
from test_cf_register import (DOMAIN, api_host, cf, fleet, health, ita,  # noqa: F401 (fixtures)
                              oidc, start_agent, start_cp, tunnel_of,
                              wait_for)
from test_client_shell import make_ca, server_ctx
import fakehttp
import test_reap


class _EdgeHandler(fakehttp.Handler):
    def do_GET(self):
        edge = self.fake
        host = self.headers.get("Host", "")
        with edge.lock:
            edge.seen.append((self.command, self.path, host,
                              self.headers.get("Authorization")))
            port = edge.routes.get(host)
        status, body, ctype = 530, b"error code: 1033", "text/plain"
        if port is not None:
            status, body, ctype = edge.origin(port, self.path)
        self.send(status, body, ctype)


class FakeEdge(fakehttp.FakeServer):
    """Cloudflare's edge for the agents' -api- hostnames: TLS, then the
    request goes to the port the test routed its Host to."""

    def __init__(self, paths, cert="edge"):
        self.routes = {}     # Host -> agent API port
        self.seen = []       # (method, path, Host, Authorization or None)
        self.lock = threading.Lock()
        self.serve(_EdgeHandler, ssl_context=server_ctx(paths, cert),
                   name="fake-edge")

    @staticmethod
    def origin(port, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                        timeout=5) as r:
                return (r.status, r.read(),
                        r.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as e:
            return e.code, e.read(), "text/plain"
        except OSError:
            return 530, b"error code: 1033", "text/plain"

    def hosts(self):
        with self.lock:
            return [s[2] for s in self.seen]


def certs(tmp_path):
    return make_ca(str(tmp_path), leaves=(
        ("edge", [x509.DNSName(f"*.{DOMAIN}")]),
        ("other", [x509.DNSName(f"*.other.{DOMAIN}")])))


def scraping_cp(start, cf, ita, oidc, tmp_path, paths, edge):
    return start_cp(start, cf, ita, oidc, tmp_path,
                    DD_CA_FILE=paths["ca.pem"],
                    DD_COLLECT_CONNECT_TO=f"127.0.0.1:{edge.port}",
                    DD_SCRAPE_INTERVAL="1", DD_SCRAPE_DEAD_AFTER="3",
                    DD_CF_REAP_INTERVAL_SECS="1",
                    DD_STONITH_EVICT_DELAY_MS="200",
                    DD_STONITH_POLL_MS="500")


def registered(start, cf, ita, oidc, tmp_path, cp, edge, vm="vm-1"):
    """A tunnel agent, registered and routed at the edge: (agent, id).
    Each on its own VM (a VM's new registration replaces its old one)."""
    agent = start_agent(start, cf, ita, oidc, tmp_path, cp, DD_VM_NAME=vm)
    aid = wait_for(lambda: health(agent)["agent_id"], what="registration")
    with edge.lock:
        edge.routes[api_host(aid)] = agent.ports["api"]
    return agent, aid


def status(cp, aid):
    a = fleet(cp).get(aid)
    return a["status"] if a else None


def deletes(cf, tid):
    return [p for c in cf.calls() if c["method"] == "DELETE"
            for p in [c["path"]] if tid in p]


def test_tunnel_agents_are_scraped_through_the_edge_and_reaped_when_dead(
        start, cf, ita, oidc, tmp_path):
    paths = certs(tmp_path)
    edge = FakeEdge(paths)
    try:
        cp = scraping_cp(start, cf, ita, oidc, tmp_path, paths, edge)
        a1, id1 = registered(start, cf, ita, oidc, tmp_path, cp, edge)
        a2, id2 = registered(start, cf, ita, oidc, tmp_path, cp, edge,
                             vm="vm-2")
        for aid in (id1, id2):
            wait_for(lambda: status(cp, aid) == "healthy", timeout=20,
                     what=f"{aid} healthy")
        a = fleet(cp)[id1]
        assert a["ingress"]["kind"] == "tunnel"
        # The spec's request: GET /health on the -api- host, no auth.
        with edge.lock:
            seen = list(edge.seen)
        for aid in (id1, id2):
            assert ("GET", "/health", api_host(aid), None) in seen, seen
        assert {s[2] for s in seen} == {api_host(id1), api_host(id2)}
        assert all(s[3] is None for s in seen)

        tid2 = tunnel_of(cf, id2)
        tid1 = tunnel_of(cf, id1)
        names = cf.cnames()
        mine = {h for h, t in names.items() if tid2 in t}
        assert mine == {f"{id2}.{DOMAIN}", api_host(id2)}
        # The agent goes; its connector stays listed (the fake keeps it),
        # as a crashed VM's would until Cloudflare notices.
        assert a2.stop() == 0
        assert cf.tunnel_state(tid2)["connections"] >= 1
        wait_for(lambda: status(cp, id2) == "stale", timeout=20,
                 what="the stopped agent stale")
        wait_for(lambda: status(cp, id2) is None, timeout=20,
                 what="the stopped agent dead and removed")
        assert f"collector: {id2} is dead" in cp.output()
        # Reaped: the tunnel (its connections dropped first), its CNAMEs.
        wait_for(lambda: cf.tunnel_state(tid2)["deleted"], timeout=20,
                 what="the dead agent's tunnel deleted")
        wait_for(lambda: not (mine & set(cf.cnames())), timeout=20,
                 what="its CNAMEs deleted")
        d = deletes(cf, tid2)
        assert d[0].endswith(f"/cfd_tunnel/{tid2}/connections"), d
        assert d[1].endswith(f"/cfd_tunnel/{tid2}"), d
        wait_for(lambda: f"reap: dead agent {id2} (" in cp.output(),
                 what="the reap logged")
        # The live agent is untouched and still scraped.
        n = edge.hosts().count(api_host(id1))
        wait_for(lambda: edge.hosts().count(api_host(id1)) >= n + 2,
                 what="more scrapes of the live agent")
        assert status(cp, id1) == "healthy"
        assert not deletes(cf, tid1)
        assert cf.cnames().get(api_host(id1)) == f"{tid1}.cfargotunnel.com"
    finally:
        edge.stop()


def test_the_edge_certificate_is_checked_against_the_api_hostname(
        start, cf, ita, oidc, tmp_path):
    """An edge whose certificate names other hosts is refused, though
    the CP connects to it on purpose: no scrape reaches the agent."""
    paths = certs(tmp_path)
    edge = FakeEdge(paths, cert="other")
    try:
        cp = scraping_cp(start, cf, ita, oidc, tmp_path, paths, edge)
        _, aid = registered(start, cf, ita, oidc, tmp_path, cp, edge)
        err = wait_for(lambda: fleet(cp)[aid].get("last_error"),
                       timeout=20, what="a failed scrape")
        assert "certificate" in err or "SSL" in err, err
        assert status(cp, aid) == "registering"
        assert edge.hosts() == []
    finally:
        edge.stop()


def test_a_tunnel_agent_without_an_api_hostname_is_skipped(
        start, cf, ita_env, tmp_path):
    """A record whose hostname yields no -api- name (only a damaged or
    foreign store can hold one: /register builds the names) is not
    scraped and stays as it is; one warning, not one per tick."""
    bad = test_reap.agent_name()
    rec = test_reap.record(bad, 60, {"kind": "tunnel"},
                           tunnel_id=cf.seed_tunnel(bad))
    rec["hostname"] = "not_a_dns_label.example.com"
    cp = test_reap.start_cp(start, cf, ita_env, tmp_path, [rec])
    line = (f"collector: 1 tunnel agents have no API hostname and are not "
            f"scraped ({bad}: ")
    wait_for(lambda: line in cp.output(), what="the warning")
    time.sleep(3)  # three more ticks (DD_SCRAPE_INTERVAL=1)
    assert cp.output().count(line) == 1
    a = fleet(cp)[bad]
    assert a["status"] == "healthy" and not a.get("last_error")


def run_cp(**env):
    full = dict(os.environ)
    full.update(BASE_ENV)
    # Never contacted: the configuration is refused first.
    full.update({"DD_ITA_BASE_URL": "http://127.0.0.1:9",
                 "DD_ITA_JWKS_URL": "http://127.0.0.1:9/certs",
                 "DD_ITA_ISSUER": "http://127.0.0.1:9",
                 "DD_ITA_API_KEY": "unused"})
    full.update(env)
    return subprocess.run([DD_BIN, "cp"], env=full, capture_output=True,
                          text=True, timeout=30)


def test_connect_to_is_a_dev_only_facility():
    r = run_cp(DD_DEV="0", DD_COLLECT_CONNECT_TO="127.0.0.1:8443")
    assert r.returncode != 0
    assert ("DD_COLLECT_CONNECT_TO: is a test and development facility "
            "(needs DD_DEV=1)") in r.stderr + r.stdout
    r = run_cp(DD_DEV="1", DD_COLLECT_CONNECT_TO="127.0.0.1")
    assert r.returncode != 0
    assert "DD_COLLECT_CONNECT_TO: must be host:port" in r.stderr + r.stdout
