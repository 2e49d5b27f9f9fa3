"""STONITH end to end: real CPs (the devopsdefender binary) on loopback
against the fake Cloudflare API (fake_cf.py), each with the fake
cloudflared (fake_cloudflared.py) that exits when its tunnel is deleted.
Power-offs are the recorded kind (DD_DEV): exit status 86 and a marker
line. Timings are shortened through DD_STONITH_* and DD_CLOUDFLARED_*;
the tests wait for events, never for fixed durations, except where they
show that something does NOT happen (then they wait several periods)."""
import json
import os
import signal
import tempfile
import threading
import time

import pytest

from conftest import DD_BIN, request
from fake_cf import FakeCF

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_CLOUDFLARED = os.path.join(HERE, "fake_cloudflared.py")
POWEROFF_EXIT = 86
POLL_MS = 300


@pytest.fixture
def cf():
    fake = FakeCF(token="tok-stonith-e2e-9f86d081884c7d659a2feaa0c55ad015")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="dd-stonith-") as d:
        yield d


def cp_env(cf, ita_env, tmp, name, **extra):
    env = dict(ita_env)
    env.update(cf.env())
    env.update({
        "DD_ENV": "pr-7",
        "DD_HOSTNAME": "pr-7.example.com",
        "DD_VM_NAME": name,
        "DD_CF_CP_EXTRAS": "shell:7682",
        "DD_CF_TIMEOUT_MS": "2000",
        "DD_CF_ATTEMPTS": "2",
        "DD_CF_MAX_WAIT_MS": "100",
        "DD_CLOUDFLARED_PATH": FAKE_CLOUDFLARED,
        "DD_CLOUDFLARED_BACKOFF_MS": "200",
        "DD_STONITH_EVICT_DELAY_MS": "200",
        "DD_STONITH_POLL_MS": str(POLL_MS),
        "DD_STONITH_DRAIN_MS": "5000",
        "DD_POWEROFF_MARKER": os.path.join(tmp, f"poweroff-{name}"),
        "FAKE_CF_CTL": cf.url,
        "FAKE_CLOUDFLARED_LOG": os.path.join(tmp, f"cloudflared-{name}"),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_for(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def health(srv):
    return request(srv.port, "GET", "/health").json()


def start_cp(start, cf, ita_env, tmp, name, **extra):
    before = set(cf.tunnels)
    srv = start([DD_BIN, "cp"], cp_env(cf, ita_env, tmp, name, **extra))
    srv.name = name
    srv.marker = os.path.join(tmp, f"poweroff-{name}")
    srv.cf_log = os.path.join(tmp, f"cloudflared-{name}")
    srv.before = before
    return srv


def tunnel_of(cf, srv):
    """Waits until the CP's tunnel exists and has a connection."""
    def find():
        with cf._lock:
            for tid, t in cf.tunnels.items():
                if tid in srv.before or not t["connections"]:
                    continue
                if t["name"] in getattr(srv, "_others", ()):
                    continue
                return tid
        return None
    if not hasattr(srv, "tid"):
        srv.tid = wait_for(find, what=f"{srv.name}'s tunnel")
    return srv.tid


def exited(srv, timeout=30.0):
    try:
        return srv.proc.wait(timeout)
    except Exception:
        return None


def marker(srv):
    if not os.path.exists(srv.marker):
        return ""
    with open(srv.marker) as f:
        return f.read()


def cloudflared_starts(srv):
    if not os.path.exists(srv.cf_log):
        return []
    with open(srv.cf_log) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_new_cp_evicts_the_old_one(start, cf, ita_env, tmp):
    old = start_cp(start, cf, ita_env, tmp, "old")
    old_tid = tunnel_of(cf, old)
    assert health(old)["stonith"] == "serving"
    # The connector got its token from the environment, never argv, and
    # none of our DD_* settings (the API token among them).
    runs = cloudflared_starts(old)
    assert runs and runs[0]["argv"] == ["tunnel", "--no-autoupdate",
                                        "--metrics=", "run"]
    assert runs[0]["token_set"] and runs[0]["dd_vars"] == []

    new = start_cp(start, cf, ita_env, tmp, "new")
    new._others = {cf.tunnels[old_tid]["name"]}
    new_tid = tunnel_of(cf, new)
    assert new_tid != old_tid

    assert exited(old) == POWEROFF_EXIT, old.output()[-3000:]
    assert "stonith: evicted" in marker(old)
    assert cf.tunnel_state(old_tid)["deleted"]
    assert not cf.tunnel_state(new_tid)["deleted"]
    assert health(new)["stonith"] == "serving"
    assert marker(new) == ""
    # Connections dropped before the delete, as Cloudflare requires.
    calls = [(c["method"], c["path"]) for c in cf.calls()
             if old_tid in c["path"] and c["method"] == "DELETE"]
    assert calls[0][1].endswith("/connections"), calls
    assert ("DELETE", calls[0][1][:-len("/connections")]) in calls
    assert "draining for at most" in old.output()


def test_simultaneous_boot_leaves_exactly_one(start, cf, ita_env, tmp):
    # A long eviction delay: both tunnels exist before either looks.
    cps = {}

    def boot(name):
        cps[name] = start_cp(start, cf, ita_env, tmp, name,
                             DD_STONITH_EVICT_DELAY_MS=2500)
    threads = [threading.Thread(target=boot, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: len([t for t in cf.tunnels.values()
                          if t["connections"]]) == 2, what="two tunnels")
    # The CPs' rule: latest created_at, then the larger name. The fake's
    # times all carry six fractional digits, so text order is time order
    # to the microsecond, as the CPs compare them.
    newest = max(cf.tunnels.values(), key=lambda t: (t["created_at"],
                                                      t["name"]))
    wait_for(lambda: any(s.proc.poll() is not None for s in cps.values()),
             what="one CP to power off")
    time.sleep(8 * POLL_MS / 1000)  # the survivor is not going anywhere
    dead = [s for s in cps.values() if s.proc.poll() is not None]
    alive = [s for s in cps.values() if s.proc.poll() is None]
    assert len(dead) == 1 and len(alive) == 1
    assert dead[0].proc.returncode == POWEROFF_EXIT
    assert health(alive[0])["stonith"] == "serving"
    live = cf.live_tunnels()
    assert list(live) == [newest["name"]]
    # The DNS cut-over went to the survivor too (both raced for the CNAME).
    assert cf.cnames()["pr-7.example.com"] == \
        live[newest["name"]] + ".cfargotunnel.com"


def test_api_outage_evicts_nobody(start, cf, ita_env, tmp):
    old = start_cp(start, cf, ita_env, tmp, "old",
                   FAKE_CLOUDFLARED_EXIT_AFTER=2)
    old_tid = tunnel_of(cf, old)
    new = start_cp(start, cf, ita_env, tmp, "new",
                   DD_STONITH_EVICT_DELAY_MS=1500)
    new._others = {cf.tunnels[old_tid]["name"]}
    tunnel_of(cf, new)
    # Cloudflare goes down before the new CP looks at the others: every
    # API call answers 503 (the connectors' own links stay up).
    cf.fail(r".*", status=503, count=10 ** 9)
    # Several eviction retries, watchdog polls and (old) connector exits.
    wait_for(lambda: len(cloudflared_starts(old)) >= 3,
             what="old connector restarts")
    time.sleep(10 * POLL_MS / 1000)
    assert old.proc.poll() is None and new.proc.poll() is None
    assert not cf.tunnel_state(old_tid)["deleted"]
    assert health(old)["stonith"] == "serving"
    assert health(new)["stonith"] == "serving"
    assert "ambiguous" in old.output()

    # The API comes back: the cut-over completes.
    with cf._lock:
        cf._faults = []
    assert exited(old) == POWEROFF_EXIT, old.output()[-3000:]
    assert new.proc.poll() is None


@pytest.mark.parametrize("account_404", [True, False])
def test_wrong_account_404_does_not_kill_a_healthy_cp(start, cf, ita_env,
                                                      tmp, account_404):
    cp = start_cp(start, cf, ita_env, tmp, "cp",
                  FAKE_CLOUDFLARED_EXIT_AFTER=1)
    tid = tunnel_of(cf, cp)
    # Reads of our own tunnel answer 404; with account_404 the whole
    # account answers 404 too (a token scoped elsewhere, a wrong account
    # id), otherwise the account still lists the tunnel live.
    cf.fail(rf"^/accounts/[^/]+/cfd_tunnel/{tid}$", status=404,
            count=10 ** 9, method="GET",
            errors=[{"code": 7003, "message": "Could not route"}])
    if account_404:
        cf.fail(r"^/accounts/[^/]+/cfd_tunnel\?", status=404,
                count=10 ** 9, method="GET",
                errors=[{"code": 7003, "message": "Could not route"}])
    # The connector keeps dying (and coming back): each exit asks.
    wait_for(lambda: len(cloudflared_starts(cp)) >= 4,
             what="connector restarts")
    time.sleep(6 * POLL_MS / 1000)
    assert cp.proc.poll() is None, cp.output()[-3000:]
    assert health(cp)["stonith"] == "serving"
    assert marker(cp) == ""
    assert "not confirmed" in cp.output()

    # Control: once the tunnel is really deleted, the same CP goes.
    with cf._lock:
        cf._faults = []
        cf.tunnels[tid]["connections"] = []
        cf.tunnels[tid]["deleted_at"] = "2026-01-01T00:00:00Z"
    assert exited(cp) == POWEROFF_EXIT, cp.output()[-3000:]


def test_cloudflared_dies_with_its_cp(start, cf, ita_env, tmp):
    cp = start_cp(start, cf, ita_env, tmp, "cp")
    tunnel_of(cf, cp)
    pid = cloudflared_starts(cp)[0]["pid"]
    os.kill(pid, 0)
    cp.proc.send_signal(signal.SIGKILL)
    cp.proc.wait(10)

    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    wait_for(gone, timeout=10, what="the orphaned connector to die")


def test_without_cloudflare_the_cp_serves_as_before(start, ita_env):
    srv = start([DD_BIN, "cp"], ita_env)
    assert health(srv)["stonith"] == "serving"
