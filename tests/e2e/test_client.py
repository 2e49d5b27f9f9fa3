"""`devopsdefender client deploy|logs|list` against a fake agent and a
fake GitHub Actions token endpoint (tests/e2e/fake_agent.py).

The agent fake refuses a token it has seen before, as the real agent's
jti replay set does, so every test that passes also shows the client
minted a fresh token for each request. No test output may contain a
token or the request token.
"""
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import BASE_ENV, DD_BIN, ROOT, SANITIZER_MARKS
from fake_agent import FakeActionsTokens, FakeAgent

APP = "hello-world"
EXAMPLE = os.path.join(ROOT, "apps", "hello-world", "workload.json")


@pytest.fixture
def issuer():
    t = FakeActionsTokens().start()
    yield t
    t.stop()


@pytest.fixture
def agent(issuer):
    a = FakeAgent(issuer=issuer).start()
    yield a
    a.stop()


class Run:
    def __init__(self, rc, out, err, secs):
        self.rc, self.out, self.err, self.secs = rc, out, err, secs

    def outputs(self):
        return dict(line.split("=", 1) for line in self.out.splitlines()
                    if "=" in line)


def client(args, env=None, issuer=None, timeout=60, stdin=None):
    """Runs the real binary; GitHub Actions env when an issuer is given."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("DD_", "ACTIONS_", "GITHUB_"))}
    full["ASAN_OPTIONS"] = "abort_on_error=1:detect_leaks=1"
    full["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    if issuer is not None:
        full["ACTIONS_ID_TOKEN_REQUEST_URL"] = issuer.request_url
        full["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = issuer.request_token
    full.update(env or {})
    start = time.monotonic()
    r = subprocess.run([DD_BIN, "client"] + args, env=full, input=stdin,
                       capture_output=True, timeout=timeout)
    run = Run(r.returncode, r.stdout.decode(errors="replace"),
              r.stderr.decode(errors="replace"), time.monotonic() - start)
    for mark in SANITIZER_MARKS:
        assert mark not in run.err, run.err[-4000:]
    if issuer is not None:
        assert issuer.request_token not in run.out + run.err
        for tok in issuer.issued:
            assert tok not in run.out + run.err
    return run


def workload(tmp_path, spec=None, name="w.json"):
    p = tmp_path / name
    if spec is None:
        p.write_text(open(EXAMPLE).read())
    else:
        p.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return str(p)


def bearers(agent, method=None, path=None):
    return [c[2] for c in agent.calls
            if (method is None or c[0] == method) and
            (path is None or c[1].startswith(path))]


# --- deploy ---------------------------------------------------------------

def test_deploy_waits_for_running_with_progress(agent, issuer, tmp_path):
    agent.running_after = 2
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--timeout", "30"], issuer=issuer)
    assert r.rc == 0, r.err
    assert "deploying hello-world to " + agent.url in r.err
    assert "deploy of hello-world accepted" in r.err
    assert "waiting for hello-world: deploying" in r.err
    assert "hello-world is running" in r.err
    out = r.outputs()
    assert out["app-name"] == APP
    assert out["status"] == "running"
    assert out["agent-url"] == agent.url
    assert out["agent-host"] == "127.0.0.1"
    assert out["deployment-id"] == agent.workloads[0]["id"]
    # What the agent got: the workload, compacted, with the bearer.
    assert agent.deploys == [json.load(open(EXAMPLE))]
    posted = [c for c in agent.calls if c[0] == "POST"][0]
    assert b" " not in posted[3].split(b'"cmd"')[0]
    # One fresh token per authenticated request, none reused.
    used = [b for b in bearers(agent) if b is not None]
    assert len(used) == 1 and used[0] in issuer.issued
    assert issuer.audiences == ["dd-agent"]
    # /health needs no token and never gets one.
    assert bearers(agent, "GET", "/health") == [None] * len(
        bearers(agent, "GET", "/health"))


def test_reference_health_shape_counts_a_listed_name(agent, issuer, tmp_path):
    agent.health_shape = "names"
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)],
               issuer=issuer)
    assert r.rc == 0, r.err
    assert r.outputs()["status"] == "listed"


def test_no_wait_returns_once_accepted(agent, issuer, tmp_path):
    agent.running_after = 1000
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--no-wait"], issuer=issuer)
    assert r.rc == 0, r.err
    assert r.outputs()["status"] == "accepted"
    # Only the readiness check before the deploy.
    assert len(bearers(agent, "GET", "/health")) == 1


def test_ok_false_fails_and_prints_the_logs(agent, issuer, tmp_path):
    agent.deploy_mode = "ok_false"
    agent.logs[APP] = ["starting", "\x1b[31mred\x1b[0m",
                       "::add-mask::x", "::set-output name=a::b"]
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)],
               issuer=issuer, env={"GITHUB_ACTIONS": "true"})
    assert r.rc == 1, r.err
    assert "runtime answered ok:false: " + agent.deploy_error in r.err
    assert "[hello-world] starting" in r.err
    # Terminal escapes made inert; runner commands fenced off and never
    # at the start of a line.
    assert "\x1b" not in r.err
    assert "[hello-world] ?[31mred?[0m" in r.err
    lines = r.err.splitlines()
    fence = [l for l in lines if l.startswith("::stop-commands::")]
    assert len(fence) == 1
    assert "::" + fence[0].split("::")[2] + "::" in lines
    assert not [l for l in lines if l.startswith("::add-mask")]
    assert r.out == ""
    # The deploy and the logs each had their own token.
    used = [b for b in bearers(agent) if b is not None]
    assert len(used) == 2 and len(set(used)) == 2


def test_workload_failing_while_waiting(agent, issuer, tmp_path):
    agent.final_status = "failed"
    agent.logs[APP] = ["sh: exec format error"]
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)],
               issuer=issuer)
    assert r.rc == 1, r.err
    assert "hello-world failed: " + agent.final_error in r.err
    assert "[hello-world] sh: exec format error" in r.err


def test_unauthorized_prints_the_reason(agent, issuer, tmp_path):
    agent.fixed_token = "the-right-token"
    tok = tmp_path / "token"
    tok.write_text("a-wrong-token\n")
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--token-file", str(tok)])
    assert r.rc == 3, r.err
    assert "refused: HTTP 401 bad_token: token does not verify" in r.err
    assert "a-wrong-token" not in r.err + r.out
    assert len(agent.deploys) == 0


def test_fixed_token_is_used_as_given(agent, tmp_path):
    agent.fixed_token = "fixed.token-0123"
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--token-file", "-"], stdin=b"fixed.token-0123\n")
    assert r.rc == 0, r.err
    assert "fixed.token-0123" not in r.err + r.out
    # --token works too, and the token never shows.
    r = client(["logs", "--agent", agent.url, APP, "--token",
                "fixed.token-0123"])
    assert r.rc == 0, r.err
    assert "fixed.token-0123" not in r.err + r.out


def test_a_fixed_token_is_refused_when_replayed(agent, issuer, tmp_path):
    """An agent with a replay set takes a token once: a fixed token cannot
    also fetch the logs after a failed deploy, and the client says so."""
    agent.deploy_mode = "ok_false"
    agent.logs[APP] = ["x"]
    issuer.issued.append("eyJ.pre-minted.sig")
    tok = tmp_path / "token"
    tok.write_text("eyJ.pre-minted.sig")
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--token-file", str(tok)])
    assert r.rc == 1, r.err
    assert "HTTP 401 replayed" in r.err
    assert "a fixed token serves one call" in r.err


def test_agent_errors_fail_with_their_code(agent, issuer, tmp_path):
    agent.deploy_mode = "status"
    agent.deploy_status = 500
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)],
               issuer=issuer)
    assert r.rc == 1, r.err
    assert ("refused: HTTP 500 upstream_failed: the workload runtime "
            "failed: boom") in r.err
    assert len(agent.deploys) == 1
    # A reply that is not a deploy result is a failure too.
    agent.deploy_mode = "not_json"
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)],
               issuer=issuer)
    assert r.rc == 1
    assert "not a deploy result" in r.err


def test_502_is_retried_with_fresh_tokens(agent, issuer, tmp_path):
    agent.deploy_mode = "status"
    agent.deploy_status = 502
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--timeout", "30"], issuer=issuer)
    assert r.rc == 1, r.err
    assert "HTTP 502; trying again" in r.err
    assert len(agent.deploys) == 4
    used = bearers(agent, "POST", "/deploy")
    assert len(set(used)) == 4


def test_a_hanging_deploy_times_out(agent, issuer, tmp_path):
    agent.deploy_mode = "hang"
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--timeout", "3"], issuer=issuer)
    assert r.rc == 4, r.err
    assert "deploy: no answer" in r.err
    assert r.secs < 8
    # Not resent: a deploy that timed out may have been carried out.
    assert len(agent.deploys) == 1


def test_waiting_is_bounded(agent, issuer, tmp_path):
    agent.running_after = 10 ** 6
    agent.logs[APP] = ["still booting"]
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--timeout", "4"], issuer=issuer)
    assert r.rc == 4, r.err
    assert "did not show as running before the deadline" in r.err
    assert "the agent lists: hello-world" in r.err
    # Time was kept for the logs, inside the deadline.
    assert "[hello-world] still booting" in r.err
    assert r.secs < 6
    # --wait-timeout bounds the wait alone.
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--timeout", "60", "--wait-timeout", "2"], issuer=issuer)
    assert r.rc == 4, r.err
    assert "(waited 2 s)" in r.err
    assert "[hello-world] still booting" in r.err
    assert r.secs < 6


def test_a_hanging_health_is_bounded(agent, issuer, tmp_path):
    agent.health_hang = True
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--timeout", "3"], issuer=issuer)
    assert r.rc == 4, r.err
    assert "was not ready before the deadline" in r.err
    assert len(agent.deploys) == 0


def test_unreachable_agent(issuer, tmp_path):
    r = client(["deploy", "--agent", "http://127.0.0.1:1", workload(tmp_path),
                "--timeout", "2"], issuer=issuer)
    assert r.rc == 4
    assert "Couldn't connect" in r.err or "connect" in r.err


# --- tokens and input, before anything is sent ---------------------------

def test_no_token_source_is_a_clear_error(agent, tmp_path):
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)])
    assert r.rc == 3
    assert "id-token: write" in r.err
    assert agent.calls == []


def test_token_endpoint_refusal(agent, issuer, tmp_path):
    issuer.request_token = "ghs_not_the_one"
    env = {"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "ghs_wrong"}
    r = client(["deploy", "--agent", agent.url, workload(tmp_path)],
               issuer=issuer, env=env)
    assert r.rc == 3, r.err
    assert "refused the request token (HTTP 401)" in r.err
    assert "ghs_wrong" not in r.err
    assert agent.deploys == []


def test_audience_flag(agent, issuer, tmp_path):
    r = client(["deploy", "--agent", agent.url, workload(tmp_path),
                "--audience", "custom-aud"], issuer=issuer)
    assert r.rc == 0, r.err
    assert set(issuer.audiences) == {"custom-aud"}


@pytest.mark.parametrize("spec,why", [
    pytest.param("{not json", "not JSON", id="not-json"),
    pytest.param({"cmd": ["x"]}, "app_name: required", id="no-app-name"),
    pytest.param({"app_name": "x", "cmd": "echo hi"}, "cmd: must be an array",
                 id="cmd-string"),
    pytest.param({"app_name": "x", "cmd": ["a"], "env": ["NOEQUALS"]},
                 "env[0]", id="env-no-equals"),
    pytest.param({"app_name": "x"}, "non-empty cmd or a github_release",
                 id="nothing-to-run"),
    pytest.param({"app_name": "x", "cmd": ["a"], "comand": ["b"]},
                 "unknown field", id="typo"),
    pytest.param("{\"app_name\":\"x\",\"cmd\":[\"" + "a" * 300000 + "\"]}",
                 "larger than", id="oversized"),
])
def test_invalid_workloads_are_refused_locally(agent, issuer, tmp_path, spec,
                                               why):
    r = client(["deploy", "--agent", agent.url, workload(tmp_path, spec)],
               issuer=issuer)
    assert r.rc == 2, r.err
    assert why in r.err
    assert agent.calls == [] and issuer.issued == []


def test_usage_errors(agent):
    r = client([])
    assert r.rc == 2 and "usage:" in r.err
    r = client(["deploy", "--agent", "http://agent.example.com", "w.json"])
    assert r.rc == 2 and "loopback" in r.err
    r = client(["deploy", "--agent", agent.url, "/nonexistent.json",
                "--token", "t"])
    assert r.rc == 2 and "cannot open" in r.err
    r = client(["--help"])
    assert r.rc == 0 and "Exit status" in r.out


# --- logs and list --------------------------------------------------------

def test_logs_command(agent, issuer):
    agent.logs[APP] = ["one", "two \x07bell"]
    r = client(["logs", "--agent", agent.url, APP], issuer=issuer)
    assert r.rc == 0, r.err
    assert r.out == "one\ntwo ?bell\n"
    r = client(["logs", "--agent", agent.url, "nope"], issuer=issuer)
    assert r.rc == 1
    assert "no deployment named nope" in r.err
    agent.fixed_token = "other"
    r = client(["logs", "--agent", agent.url, APP], issuer=issuer)
    assert r.rc == 3


def test_list_command(agent, issuer, tmp_path):
    assert client(["deploy", "--agent", agent.url, workload(tmp_path)],
                  issuer=issuer).rc == 0
    r = client(["list", "--agent", agent.url])
    assert r.rc == 0, r.err
    wid = agent.workloads[0]["id"]
    assert r.out == f"hello-world\trunning\t{wid}\n"
    assert "1 deployments" in r.err
    agent.health_shape = "names"
    r = client(["list", "--agent", agent.url])
    assert r.out == "hello-world\n"


# --- discovery through the control plane ----------------------------------

def test_discovery_picks_the_latest_usable_agent(agent, issuer, tmp_path):
    agent.agents = [
        {"vm_name": "e2e-vm", "hostname": "dd-e2e-agent-old.invalid",
         "status": "healthy", "last_seen": "2026-01-01T00:00:00Z"},
        {"vm_name": "e2e-vm", "hostname": "dd-e2e-agent-new.invalid",
         "status": "stale", "last_seen": "2026-01-02T00:00:00Z"},
        {"vm_name": "e2e-vm", "hostname": "dd-e2e-agent-dead.invalid",
         "status": "dead", "last_seen": "2026-02-01T00:00:00Z"},
        {"vm_name": "other", "hostname": "x.invalid", "status": "healthy",
         "last_seen": "2027-01-01T00:00:00Z"},
    ]
    r = client(["deploy", "--cp", agent.url, "--vm", "e2e-vm",
                workload(tmp_path), "--timeout", "3"], issuer=issuer)
    # The derived API host does not resolve here: found, then not ready.
    assert ("vm e2e-vm: agent dd-e2e-agent-new.invalid, API "
            "https://dd-e2e-api-new.invalid") in r.err
    assert r.rc == 4
    r = client(["list", "--cp", agent.url], issuer=issuer)
    assert r.rc == 0
    assert r.out.splitlines()[0] == ("e2e-vm\thealthy\tdd-e2e-agent-old.invalid"
                                     "\t2026-01-01T00:00:00Z")
    used = [b for b in bearers(agent, "GET", "/api/agents")]
    assert len(used) == len(set(used)) >= 2


def test_discovery_gives_up_listing_what_it_saw(agent, issuer, tmp_path):
    agent.agents = [{"vm_name": "e2e-vm", "hostname": "h.invalid",
                     "status": "dead", "last_seen": "2026-01-01T00:00:00Z"}]
    r = client(["deploy", "--cp", agent.url, "--vm", "e2e-vm",
                workload(tmp_path), "--timeout", "2"], issuer=issuer)
    assert r.rc == 4
    assert "no agent for vm e2e-vm before the deadline" in r.err
    assert "h.invalid status=dead" in r.err
    agent.fixed_token = "other"
    r = client(["deploy", "--cp", agent.url, "--vm", "e2e-vm",
                workload(tmp_path), "--timeout", "2"], issuer=issuer)
    assert r.rc == 3
    assert "the control plane refused: HTTP 401" in r.err


# --- HTTPS: verification is always on ------------------------------------

def _tls_files(tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    return ctx, str(tmp_path / "ca.pem")


def test_https_needs_a_trusted_certificate(issuer, tmp_path):
    ctx, ca = _tls_files(tmp_path)
    tls_agent = FakeAgent(issuer=issuer).start(ssl_context=ctx)
    try:
        assert tls_agent.url.startswith("https://")
        r = client(["deploy", "--agent", tls_agent.url, workload(tmp_path),
                    "--timeout", "2"], issuer=issuer)
        assert r.rc == 4
        assert "certificate" in r.err.lower()
        assert tls_agent.deploys == []
        r = client(["deploy", "--agent", tls_agent.url, workload(tmp_path)],
                   issuer=issuer, env={"DD_CA_FILE": ca})
        assert r.rc == 0, r.err
        assert r.outputs()["status"] == "running"
    finally:
        tls_agent.stop()


# --- the composite action, its scripts run as the runner would ----------

ACTION = os.path.join(ROOT, ".github", "actions", "dd-deploy", "action.yml")


def _action_steps():
    """(id, env, script) of each step, read from action.yml by indentation
    (the file's own simple layout; no YAML library needed)."""
    lines = open(ACTION).read().splitlines()
    defaults, steps, i = {}, [], 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^  ([a-z0-9-]+):$", line)
        j = i + 1
        while m and j < len(lines) and lines[j].startswith("    "):
            d = re.match(r"^    default: '?([^']*)'?$", lines[j])
            if d:
                defaults[m.group(1)] = d.group(1)
            j += 1
        if re.match(r"^    - id: ", line):
            step = {"id": line.split(":", 1)[1].strip(), "env": {}, "run": ""}
            steps.append(step)
        elif line.strip() == "env:" and steps:
            i += 1
            while re.match(r"^        [A-Z_0-9]+: ", lines[i]):
                k, v = lines[i].strip().split(": ", 1)
                steps[-1]["env"][k] = v
                i += 1
            continue
        elif line.strip() == "run: |" and steps:
            i += 1
            body = []
            while i < len(lines) and (lines[i].startswith("        ") or
                                      not lines[i].strip()):
                body.append(lines[i][8:])
                i += 1
            while body and not body[-1]:
                body.pop()
            steps[-1]["run"] = "\n".join(body) + "\n"
            continue
        i += 1
    return defaults, steps


def run_action(inputs, env, tmp_path):
    """Runs the action's steps in order; returns (rc, log, outputs)."""
    defaults, steps = _action_steps()
    values = dict(defaults)
    values.update(inputs)
    outputs, log, rc = {}, "", 0
    for step in steps:
        out_file = tmp_path / f"out-{step['id']}"
        out_file.write_text("")
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("DD_", "ACTIONS_", "GITHUB_"))}
        full.update({"ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
                     "GITHUB_OUTPUT": str(out_file),
                     "RUNNER_TEMP": str(tmp_path)})
        full.update(env)
        for k, v in step["env"].items():
            v = re.sub(r"\$\{\{ inputs\.([a-z0-9-]+) \}\}",
                       lambda m: values.get(m.group(1), ""), v)
            v = re.sub(r"\$\{\{ steps\.([a-z]+)\.outputs\.([a-z-]+) \}\}",
                       lambda m: outputs.get(m.group(1), {}).get(m.group(2), ""),
                       v)
            full[k] = v
        r = subprocess.run(["bash", "-c", step["run"]], env=full,
                           capture_output=True, text=True, timeout=120)
        log += r.stdout + r.stderr
        outputs[step["id"]] = dict(
            l.split("=", 1) for l in out_file.read_text().splitlines()
            if "=" in l)
        rc = r.returncode
        if rc:
            break
    return rc, log, outputs.get("deploy", {})


def test_the_action_deploys_and_sets_outputs(agent, issuer, tmp_path):
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
           "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token}
    inputs = {"agent-url": agent.url, "workload": EXAMPLE,
              "wait-for-deployment-seconds": "30", "binary": DD_BIN}
    rc, log, out = run_action(inputs, env, tmp_path)
    assert rc == 0, log
    assert out["app-name"] == APP and out["status"] == "running"
    assert out["agent-host"] == "127.0.0.1"
    assert out["deployment-id"] == agent.workloads[0]["id"]
    for tok in issuer.issued + [issuer.request_token]:
        assert tok not in log
    # No wait: accepted is enough.
    rc, log, out = run_action(dict(inputs, **{
        "wait-for-deployment-seconds": "0"}), env, tmp_path)
    assert rc == 0 and out["status"] == "accepted", log
    # ok:false fails the step, with an annotation.
    agent.deploy_mode = "ok_false"
    rc, log, out = run_action(inputs, env, tmp_path)
    assert rc == 1
    assert "::error title=dd-deploy::the deployment was refused or failed" in log
    assert "runtime answered ok:false" in log


def test_the_action_refuses_early(agent, issuer, tmp_path):
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": issuer.request_url,
           "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token}
    base = {"agent-url": agent.url, "workload": EXAMPLE, "binary": DD_BIN}
    rc, log, _ = run_action(base, {}, tmp_path)
    assert rc == 3 and "id-token: write" in log
    rc, log, _ = run_action({"workload": EXAMPLE, "binary": DD_BIN}, env,
                            tmp_path)
    assert rc == 2 and "give cp-url and vm-name, or agent-url" in log
    rc, log, _ = run_action(dict(base, **{"wait-for-deployment-seconds":
                                          "soon"}), env, tmp_path)
    assert rc == 2
    rc, log, _ = run_action(dict(base, binary="/nonexistent/dd"), env,
                            tmp_path)
    assert rc == 2 and "no devopsdefender binary" in log
    rc, log, _ = run_action(dict(base, **{"binary-url":
                                          "https://example.invalid/dd"}),
                            env, tmp_path)
    assert rc == 2 and "needs binary-sha256" in log
    rc, log, _ = run_action(dict(base, **{"binary-url": "http://x/dd",
                                          "binary-sha256": "0" * 64}),
                            env, tmp_path)
    assert rc == 2 and "must be https" in log
    assert agent.calls == []

# --- the real thing: `devopsdefender dev` (CP, agent, runtime, issuers) ---

class _Issuer:
    """The dev fleet's local OIDC issuer, as client() sees an issuer."""

    def __init__(self, url, token):
        self.request_url, self.request_token, self.issued = url, token, []


def test_against_the_dev_fleet(tmp_path):
    state = tempfile.mkdtemp(prefix="ddc-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env["ASAN_OPTIONS"] = BASE_ENV["ASAN_OPTIONS"]
    p = subprocess.Popen([DD_BIN, "dev", "--port-base", "0", "--state-dir",
                          state], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        banner = ""
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            banner += line
        assert "Press Ctrl-C" in banner, banner
        # The banner's own instructions, followed to the letter.
        cmd = re.search(r"devopsdefender client (deploy .*)", banner).group(1)
        issuer = _Issuer(
            re.search(r"ACTIONS_ID_TOKEN_REQUEST_URL='([^']+)'",
                      banner).group(1),
            re.search(r"ACTIONS_ID_TOKEN_REQUEST_TOKEN=(\S+)",
                      banner).group(1))
        agent = re.search(r"--agent (\S+)", cmd).group(1)
        args = [os.path.join(ROOT, a) if a.endswith(".json") else a
                for a in cmd.split()]
        r = client(args + ["--timeout", "60"], issuer=issuer)
        assert r.rc == 0, r.err
        out = r.outputs()
        assert out["status"] == "running" and out["app-name"] == APP
        r = client(["list", "--agent", agent])
        assert f"hello-world\trunning\t{out['deployment-id']}" in r.out
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = client(["logs", "--agent", agent, APP], issuer=issuer)
            if "hello from devopsdefender" in r.out:
                break
            time.sleep(0.5)
        assert r.rc == 0 and "hello from devopsdefender" in r.out, r.err
        # A workload that cannot start fails the command, with the reason.
        bad = workload(tmp_path, {"app_name": "bad",
                                  "cmd": ["/nonexistent/program"]}, "bad.json")
        r = client(["deploy", "--agent", agent, bad, "--timeout", "60"],
                   issuer=issuer)
        assert r.rc == 1, r.err
        assert "bad failed: spawn failed" in r.err
        # A token for another audience is refused by the real verifier.
        r = client(["deploy", "--agent", agent, workload(tmp_path),
                    "--audience", "not-dd-agent", "--timeout", "20"],
                   issuer=issuer)
        assert r.rc == 3, r.err
        assert "HTTP 401 bad_token" in r.err
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
        err = p.stderr.read()
        for mark in SANITIZER_MARKS:
            assert mark not in err, err[-4000:]
        shutil.rmtree(state, ignore_errors=True)
