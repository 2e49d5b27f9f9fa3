"""The newcomer's shell (issue 7's done criterion), exactly as the banner
of `devopsdefender dev` tells it: `client pair` against agent 1, the
enrollment URL opened the way a fresh browser does (the agent sends it to
the CP for a ticket, the CP to dev sign-in, signed in as a fleet admin
it comes back to the agent's page, whose CSRF form confirms), `client
sessions`, then `client shell` under tmux; then Ctrl-C, and nothing the
fleet started is left running.
docs/control-plane.md "Dev fleet", docs/client.md "Shells"."""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

from conftest import BASE_ENV, DD_BIN, request
from test_auth import cookies_of, split
from test_client_shell import SIM, TMUX, Tmux, client
from test_dev_fleet import (alive, banner_urls, both_healthy, descendants,
                            dev_sign_in, signin_url, start_fleet, stop_fleet,
                            wait_fleet)


class CookieJar:
    """What a browser does between clicks on 127.0.0.1: cookies are per
    host, not per port, and redirects are followed."""

    def __init__(self, **cookies):
        self.cookies = dict(cookies)

    def headers(self, **more):
        h = {"Accept": "text/html"}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(more)
        return h

    def go(self, url, method="GET", body=b"", **more):
        """Requests url and follows redirects; returns (response, url,
        every URL visited)."""
        seen = []
        for _ in range(10):
            seen.append(url)
            port, path = split(url)
            r = request(port, method, path, self.headers(**more), body)
            self.cookies.update(cookies_of(r))
            if r.status not in (302, 303, 307):
                return r, url, seen
            url = urllib.parse.urljoin(url, r.header("location"))
            if r.status == 303:
                method, body, more = "GET", b"", {}
        raise AssertionError(f"too many redirects: {seen}")


def form_of(page, marker):
    """The action and hidden fields of the page's form that holds marker
    (pages have others: sign-out's, for one)."""
    forms = re.findall(r"<form method=post action=([^ >]+)>(.*?)</form>", page, re.S)
    action, inner = [f for f in forms if marker in f[1]][0]
    fields = {k: html.unescape(v) for k, v in
              re.findall(r'<input type=hidden name=(\w+) value="([^"]*)"', inner)}
    return action, fields


def post_form(jar, base, action, fields):
    return jar.go(urllib.parse.urljoin(base + "/", action), "POST",
                  urllib.parse.urlencode(fields).encode(),
                  **{"Content-Type": "application/x-www-form-urlencoded",
                     "Origin": base})


def enroll_as_a_browser(cp, enroll_url, pubkey, code):
    """A fresh browser opens the enrollment URL: dev sign-in as a fleet
    admin (the run's code pasted: a redirect cannot carry it), the
    agent's confirmation page, its form. Returns the agent's device list
    page."""
    jar = CookieJar()
    agent = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(enroll_url))
    r, url, seen = jar.go(enroll_url)
    # The agent sends it to the CP for a ticket, the CP to sign in first.
    assert r.status == 200 and url.startswith(cp + "/auth/dev?"), seen
    assert seen[1].startswith(cp + "/auth/agent?"), seen
    action, fields = form_of(r.body.decode(), "name=admin")
    fields.update(code=code, login="newcomer", admin="1")
    r, url, seen = post_form(jar, cp, action, fields)
    # Signed in, then back through the ticket to the page the URL named.
    assert r.status == 200 and url == enroll_url, (seen, r.body)
    assert any(u.startswith(agent + "/auth/ticket?") for u in seen), seen
    page = r.body.decode()
    assert "Pair this device?" in page and "newcomer" in page
    assert " ".join(pubkey[i:i + 4] for i in range(0, 64, 4)) in \
        re.sub(r"<br>", " ", page)
    action, fields = form_of(page, "id=confirm")
    assert fields["pubkey"] == pubkey and fields["csrf"]
    r, url, _ = post_form(jar, agent, action, fields)
    assert r.status == 200 and url == agent + "/api/v1/devices", (url, r.body)
    return r.body.decode()


def session_shells(pids):
    """The sessions' programs among pids: they carry DD_SESSION_ID."""
    out = []
    for pid in pids:
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(b"DD_SESSION_ID=") for v in env):
            out.append(pid)
    return out


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_pair_confirm_and_shell_into_a_dev_agent(tmp_path):
    home = str(tmp_path)
    p, banner, state = start_fleet()
    t = Tmux("dd", str(tmp_path / "tmux.sock"))
    procs = []
    try:
        cp, agents = banner_urls(banner)
        a1 = agents["dev-agent-1"]
        # The banner's three steps, taken as printed.
        pair = re.search(r"\S+ client pair (\S+)\n", banner)
        shell = re.search(r"(\S+) client shell --allow-simulated (\S+)\n", banner)
        assert pair.group(1) == a1 and shell.group(2) == a1, banner
        assert f"{a1}/admin/enroll?pubkey=" in banner
        assert os.path.exists(os.path.join(state, "sessiond-1.sock"))
        assert os.path.exists(os.path.join(state, "sessiond-2.sock"))

        r = client(["pair", pair.group(1), "--label", "newcomer laptop"], home)
        assert r.returncode == 0, r.stderr
        out = dict(line.split("=", 1) for line in r.stdout.splitlines())
        assert out["enroll_url"].startswith(a1 + "/admin/enroll?pubkey=")
        # Not paired yet: the agent refuses the device.
        r = client(["sessions", a1, SIM], home)
        assert r.returncode == 3 and "pair it first" in r.stderr, r.stderr

        _, code = signin_url(banner)
        wait_fleet(cp, dev_sign_in(cp, code), both_healthy)
        # A dev user who is not a fleet admin cannot confirm it.
        jar = CookieJar(dd_session=dev_sign_in(cp, code, "nobody", admin=False))
        r, _, seen = jar.go(out["enroll_url"])
        assert r.status == 403 and "id=confirm" not in r.body.decode(), seen
        # Another local user, who can reach the fleet but never saw the
        # banner, cannot make themselves a fleet admin to confirm it.
        jar = CookieJar()
        r, url, seen = jar.go(out["enroll_url"])
        action, fields = form_of(r.body.decode(), "name=admin")
        for guess in ({}, {"code": "A" * len(code)}):
            fields.update(guess, login="mallory", admin="1")
            r, _, _ = post_form(jar, cp, action, fields)
            assert r.status == 403 and r.json()["code"] == "bad_code"
            assert "dd_session" not in jar.cookies
        listed = enroll_as_a_browser(cp, out["enroll_url"], out["pubkey"],
                                     code)
        assert "newcomer laptop" in listed and out["pubkey"] in listed

        r = client(["sessions", a1, SIM], home)
        assert r.returncode == 0, r.stderr
        assert "SIMULATED" in r.stderr

        script = tmp_path / "run.sh"
        script.write_text(
            f"export XDG_CONFIG_HOME={home}/cfg HOME={home}\n"
            f"{shell.group(0).strip()}; echo client-exit=$?\n"
            "exec sleep 60\n")
        assert t.cmd("new-session", "-d", "-s", "dd", "-x", "100", "-y", "30",
                     f"sh {script}").returncode == 0
        t.wait("Ctrl-] detaches")
        t.keys("echo dd-$((6*7))", "Enter")
        t.wait("dd-42")
        procs = descendants(p.pid)
        shells = session_shells(procs)
        assert len(shells) >= 1, procs      # the session's shell, under the fleet
        t.keys("C-]")
        s = t.wait("client-exit=0")
        assert "detached from session" in s
        # Detached, not ended: the session is still there.
        r = client(["sessions", a1, SIM], home)
        assert r.returncode == 0 and "running" in r.stdout, r.stdout + r.stderr
        procs = descendants(p.pid)
        assert set(shells) <= set(procs)
    finally:
        t.cmd("kill-server")
        stop_fleet(p)
    left = [pid for pid in procs if alive(pid)]
    assert left == [], left


def test_a_state_dir_others_can_write_is_refused():
    """The sessionds run what the state directory's recipes.json names:
    a directory that someone else can write (or owns) is not used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["ASAN_OPTIONS"] = BASE_ENV["ASAN_OPTIONS"]

    def dev(state):
        return subprocess.run([DD_BIN, "dev", "--port-base", "0", "--state-dir",
                               str(state)], env=env, capture_output=True,
                              text=True, timeout=30)
    # Short paths: sockets live there (--state-dir takes under 80 bytes).
    shared, theirs = tempfile.mkdtemp(prefix="dd-"), tempfile.mkdtemp(prefix="dd-")
    try:
        os.chmod(shared, 0o777)
        r = dev(shared)
        assert r.returncode == 1, r.stderr
        assert "only this user can write" in r.stderr, r.stderr
        assert os.listdir(shared) == [] and "is up" not in r.stdout
        if os.getuid() == 0:
            os.chown(theirs, 65534, 65534)
            r = dev(theirs)
            assert r.returncode == 1 and "only this user can write" in r.stderr
            assert os.listdir(theirs) == []
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(theirs, ignore_errors=True)
    # The recipe written into a directory of ours: a login shell at home.
    p, _, state = start_fleet()
    stop_fleet(p)
    recipes = json.load(open(os.path.join(state, "recipes.json")))["recipes"]
    assert [r["id"] for r in recipes] == ["shell"]
    assert recipes[0]["argv"] in (["/bin/bash", "-l"], ["/bin/sh", "-l"])
    assert recipes[0]["cwd"] == os.environ.get("HOME", "/")
