"""`devopsdefender dev`: one command, a whole fleet. The agent registers
with the CP through the local ITA, and CI-style deploys work with a token
from the fleet's local OIDC issuer, through the production verifier."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

from conftest import BASE_ENV, DD_BIN, ROOT, request


def start_fleet(*extra, env_extra=None):
    """Starts `devopsdefender dev` on free ports with its state in a fresh
    directory; returns (process, banner, state dir). Its logs go to a
    file (p.log): a pipe nobody reads would fill and stall the fleet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["ASAN_OPTIONS"] = BASE_ENV["ASAN_OPTIONS"]
    env.update(env_extra or {})
    state = tempfile.mkdtemp(prefix="dd-dev-")
    log = tempfile.NamedTemporaryFile(prefix="dd-dev-", suffix=".log",
                                      delete=False)
    p = subprocess.Popen([DD_BIN, "dev", "--port-base", "0",
                          "--state-dir", state, *extra], env=env,
                         stdout=subprocess.PIPE, stderr=log, text=True)
    p.log = log.name
    banner = ""
    deadline = time.monotonic() + 30
    while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        banner += line
    assert "Press Ctrl-C" in banner, banner + open(p.log).read()[-3000:]
    return p, banner, state


def stop_fleet(p, timeout=30):
    """Ctrl-C; the fleet must exit 0, sanitizer-clean."""
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout)
    err = open(p.log, errors="replace").read()
    assert rc == 0, err[-4000:]
    assert "ERROR: AddressSanitizer" not in err and "runtime error:" not in err
    assert "ignored SIGTERM" not in err, err[-4000:]
    os.unlink(p.log)


def test_register_then_deploy_with_a_local_ci_token():
    p, banner, _ = start_fleet()
    try:
        url = re.search(r"ACTIONS_ID_TOKEN_REQUEST_URL='([^']+)'", banner).group(1)
        rtok = re.search(r"ACTIONS_ID_TOKEN_REQUEST_TOKEN=([0-9a-f]+)", banner).group(1)
        agent = int(re.search(r"--agent http://127\.0\.0\.1:(\d+)", banner).group(1))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h = request(agent, "GET", "/health").json()
            if h["agent_id"]:
                break
            time.sleep(0.1)
        assert h["agent_id"].startswith("dd-dev-agent-")

        def ci_token(audience="dd-agent"):
            rq = urllib.request.Request(f"{url}&audience={audience}",
                                        headers={"Authorization": f"Bearer {rtok}"})
            return json.load(urllib.request.urlopen(rq, timeout=10))["value"]

        body = json.dumps({"app_name": "hello", "cmd": [
            "/bin/sh", "-c", "while true; do echo hello from dev; sleep 0.2; done"]}).encode()
        hdr = {"Content-Type": "application/json"}
        r = request(agent, "POST", "/deploy",
                    dict(hdr, Authorization=f"Bearer {ci_token()}"), body)
        assert r.status == 200 and r.json()["ok"] is True, r.body
        # The local runtime runs it for real; its output comes back.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = request(agent, "GET", "/logs/hello",
                        {"Authorization": f"Bearer {ci_token()}"})
            if r.status == 200 and "hello from dev" in r.json().get("lines", []):
                break
            time.sleep(0.2)
        assert "hello from dev" in r.json()["lines"]
        h = request(agent, "GET", "/health").json()
        assert h["runtime_reachable"] is True and h["runtime_sealed"] is False
        # A token for another audience is not one for us.
        r = request(agent, "POST", "/deploy",
                    dict(hdr, Authorization=f"Bearer {ci_token('other')}"), body)
        assert r.status == 401 and r.json()["code"] == "bad_token"
        # Without the request token the issuer gives nothing.
        try:
            urllib.request.urlopen(f"{url}&audience=dd-agent", timeout=10)
            raise AssertionError("issued a token without the request token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
    finally:
        stop_fleet(p)


# --- the two-agent fleet, its dashboard, and a clean stop ------------------

def banner_urls(banner):
    cp = re.search(r"Dashboard +(http://127\.0\.0\.1:\d+)/", banner).group(1)
    agents = dict(re.findall(r"agent \d +(dev-agent-\d) +(http://127\.0\.0\.1:\d+)/",
                             banner))
    return cp, agents


def signin_url(banner):
    """The banner's sign-in URL and its code (new each run)."""
    m = re.search(r"Sign in +(http://127\.0\.0\.1:\d+/auth/dev\?code="
                  r"([A-Za-z0-9_-]{22}))  ", banner)
    return m.group(1), m.group(2)


def dev_sign_in(cp, code, login="devvy", admin=True):
    """The dev sign-in form, posted as the browser would; the cookie."""
    port = int(cp.rsplit(":", 1)[1])
    form = f"code={code}&login={login}" + ("&admin=1" if admin else "") + \
        "&return_to=/"
    r = request(port, "POST", "/auth/dev",
                {"Content-Type": "application/x-www-form-urlencoded",
                 "Origin": cp}, form.encode())
    assert r.status == 303, r.body
    return [v for k, v in r.headers if k == "set-cookie"][0] \
        .split(";")[0].split("=", 1)[1]


def fleet_view(cp, cookie):
    port = int(cp.rsplit(":", 1)[1])
    r = request(port, "GET", "/api/fleet", {"Cookie": f"dd_session={cookie}",
                                            "Accept": "application/json"})
    assert r.status == 200, r.body
    return {a["vm_name"]: a for a in r.json()["agents"]}


def wait_fleet(cp, cookie, ok, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        view = fleet_view(cp, cookie)
        if ok(view):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.25)


def both_healthy(view):
    return all(view.get(vm, {}).get("status") == "healthy"
               for vm in ("dev-agent-1", "dev-agent-2"))


def descendants(pid):
    """Every process under pid, from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
            try:
                kids = open(f"/proc/{p}/task/{task}/children").read().split()
            except OSError:
                continue
            for k in map(int, kids):
                out.append(k)
                todo.append(k)
    return out


def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def child_with_vm(p, vm):
    for pid in descendants(p.pid):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"DD_VM_NAME={vm}".encode() in env and \
                b"agent" in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0"):
            return pid
    raise AssertionError(f"no process for {vm}")


def client_deploy(banner, agent_url):
    url = re.search(r"ACTIONS_ID_TOKEN_REQUEST_URL='([^']+)'", banner).group(1)
    rtok = re.search(r"ACTIONS_ID_TOKEN_REQUEST_TOKEN=([0-9a-f]+)", banner).group(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env.update(ACTIONS_ID_TOKEN_REQUEST_URL=url,
               ACTIONS_ID_TOKEN_REQUEST_TOKEN=rtok,
               ASAN_OPTIONS=BASE_ENV["ASAN_OPTIONS"])
    return subprocess.run(
        [DD_BIN, "client", "deploy", "--agent", agent_url,
         os.path.join(ROOT, "apps", "hello-world", "workload.json"),
         "--timeout", "60"], env=env, capture_output=True, text=True,
        timeout=90)


def test_dev_fleet_two_agents_deploy_and_clean_stop():
    t0 = time.monotonic()
    p, banner, state = start_fleet()
    procs = []
    try:
        cp, agents = banner_urls(banner)
        assert set(agents) == {"dev-agent-1", "dev-agent-2"}
        # The banner says where to click, how to sign in and deploy.
        url, code = signin_url(banner)
        assert url == f"{cp}/auth/dev?code={code}" and "fleet admin" in banner
        assert "client deploy --agent " + agents["dev-agent-1"] in banner
        assert "apps/hello-world/workload.json" in banner
        cookie = dev_sign_in(cp, code)
        view = wait_fleet(cp, cookie, both_healthy)
        # Registered and scraped within seconds of the start.
        assert time.monotonic() - t0 < 30
        assert view["dev-agent-1"]["ita"]["extra"]["dd_simulated"] is True
        r = client_deploy(banner, agents["dev-agent-1"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "status=running" in r.stdout
        view = wait_fleet(cp, cookie, lambda v: "hello-world" in v.get(
            "dev-agent-1", {}).get("deployment_names", []))
        assert view["dev-agent-2"]["deployment_names"] == []
        # A dev user who is not an admin owns nothing here, so sees nothing.
        assert fleet_view(cp, dev_sign_in(cp, code, "nobody",
                                          admin=False)) == {}
        procs = descendants(p.pid)
        # ITA, CP, two runtimes, two agents, and the workload under runtime 1.
        assert len(procs) >= 7, procs
    finally:
        stop_fleet(p)
    left = [pid for pid in procs if alive(pid)]
    assert left == [], left
    # Everything it kept is under the one state directory.
    assert os.path.exists(os.path.join(state, "cp.db"))
    assert {"releases-1", "releases-2"} <= set(os.listdir(state))


def test_dashboard_in_chromium_goes_live():
    """A person's view: sign in with dev sign-in, both agents appear, a
    deploy shows up and an agent that stops answering turns stale, then
    healthy again, all without reloading the page; then one click to the
    agent's own dashboard and the workload's logs."""
    import browser
    # The collector's tick, lowered: a status change shows sooner.
    p, banner, _ = start_fleet(env_extra={"DD_SCRAPE_INTERVAL": "1"})
    stopped = None
    try:
        cp, agents = banner_urls(banner)
        url, code = signin_url(banner)
        with browser.Browser() as b:
            b.goto(cp + "/")
            # No session: sent to dev sign-in, which cannot know the code:
            # it says where it is and takes it pasted; then brings us back.
            assert b.eval("location.pathname") == "/auth/dev"
            assert "sign-in URL the dev fleet printed" in b.eval(
                "document.body.innerText")
            b.submit("form[action='/auth/dev']",
                     {"code": code, "login": "devvy", "admin": True})
            assert b.eval("location.href") == cp + "/"
            assert b.eval("document.title") == "DD Fleet"
            assert "SIMULATED" in b.eval("document.body.innerText")
            b.eval("window.__same_page = 'yes'")
            row = ("(document.querySelector('tr[data-agent] a') && "
                   "[...document.querySelectorAll('tr[data-agent]')].find("
                   "r => r.cells[0].innerText === '%s') || {dataset: {}})")
            status = row + ".dataset.status"
            b.wait_for(" && ".join(f"{status % vm} === 'healthy'"
                                   for vm in agents), timeout=30)
            # A deploy shows up live.
            r = client_deploy(banner, agents["dev-agent-1"])
            assert r.returncode == 0, r.stdout + r.stderr
            b.wait_for(f"({row % 'dev-agent-1'}.innerText || '')"
                       ".includes('hello-world')", timeout=30)
            # An agent that stops answering goes stale, and comes back.
            stopped = child_with_vm(p, "dev-agent-2")
            os.kill(stopped, signal.SIGSTOP)
            b.wait_for(f"{status % 'dev-agent-2'} === 'stale'", timeout=30)
            assert b.eval(f"{status % 'dev-agent-1'}") == "healthy"
            assert "stale" in b.eval(f"{row % 'dev-agent-2'}.innerText")
            os.kill(stopped, signal.SIGCONT)
            stopped = None
            b.wait_for(f"{status % 'dev-agent-2'} === 'healthy'", timeout=30)
            # All of it without a reload, and the page says it is live.
            assert b.eval("window.__same_page") == "yes"
            assert b.eval("document.getElementById('fleet-status')"
                          ".className") == "live"
            # A lost session: the poll's redirect to sign-in is not followed
            # nor swapped in; the page says so and keeps its last view.
            b.clear_cookies()
            b.wait_for("document.getElementById('fleet-status').textContent"
                       ".includes('signed out')", timeout=15)
            assert b.eval("document.getElementById('fleet-status')"
                          ".className") == "live dead"
            assert "dev-agent-2" in b.eval("document.getElementById("
                                           "'fleet-body').innerText")
            assert "Dev sign-in" not in b.eval("document.body.innerText")
            # The banner's sign-in URL: the code rides its form.
            b.goto(url)
            b.submit("form[action='/auth/dev']", {"login": "devvy", "admin": True})
            assert b.eval("location.href") == cp + "/"
            # The detail page of an agent, one click away.
            b.goto(cp + b.eval(f"{row % 'dev-agent-1'}.cells[0]"
                               ".querySelector('a').getAttribute('href')"))
            text = b.eval("document.body.innerText")
            assert "dev-agent-1" in text and "Intel Trust Authority" in text
            assert "hello-world" in text
            assert b.errors == [] and b.console == [], (b.errors, b.console)
            assert all(u.startswith(cp) for u in b.requests), b.requests
            # The workload's logs: the fleet's "dashboard" link signs us in
            # to the agent (a CP ticket) and its page links the logs.
            b.goto(cp + "/")
            dash = b.eval(f"{row % 'dev-agent-1'}.querySelector("
                          "'a[target=_blank]').href")
            assert dash == agents["dev-agent-1"] + "/"
            b.goto(dash)
            assert b.eval("location.href") == dash
            assert "hello-world" in b.eval("document.body.innerText")
            b.goto(b.eval("[...document.querySelectorAll('a')].find("
                          "a => a.innerText === 'logs').href"))
            b.wait_for("document.body.innerText.includes("
                       "'hello from devopsdefender')", timeout=20)
            assert b.errors == [], b.errors
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        stop_fleet(p)
