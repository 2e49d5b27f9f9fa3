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

from conftest import BASE_ENV, DD_BIN, request


def start_fleet():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["ASAN_OPTIONS"] = BASE_ENV["ASAN_OPTIONS"]
    p = subprocess.Popen([DD_BIN, "dev", "--port-base", "0",
                          "--state-dir", tempfile.mkdtemp(prefix="dd-dev-")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    banner = ""
    deadline = time.monotonic() + 30
    while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        banner += line
    assert "Press Ctrl-C" in banner, banner
    return p, banner


def test_register_then_deploy_with_a_local_ci_token():
    p, banner = start_fleet()
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
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
        err = p.stderr.read()
        assert "ERROR: AddressSanitizer" not in err and "runtime error:" not in err
