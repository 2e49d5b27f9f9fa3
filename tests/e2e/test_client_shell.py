"""`devopsdefender client pair|shell|sessions|replay` end to end against a
real CP, agent and sessiond (the agent serves a simulated quote, as the
dev fleet does); the device is paired through the agent's API as a person
would. Spec: noise-sessions 2.6, 2.7, 3.1, 4, 5.10, 8.6; docs/client.md
"Shells"."""
import asyncio
import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import DD_BIN, request
from test_agent_api import OWNER, agent_env, ee, oidc  # noqa: F401 (fixtures)
from test_devices import Session, state_dir, wait_for  # noqa: F401 (fixtures)
from test_noise_gw import Noise, read_until, run, sessiond, start_agent  # noqa: F401

SIM = "--allow-simulated"


def client(args, home, timeout=60, **env):
    e = dict(os.environ, XDG_CONFIG_HOME=os.path.join(home, "cfg"), HOME=home)
    e.pop("DD_CA_FILE", None)
    e.update(env)
    return subprocess.run([DD_BIN, "client"] + args, env=e, capture_output=True,
                          timeout=timeout, text=True)


def pair_key(home, label="laptop"):
    r = client(["pair", "http://127.0.0.1:1", "--label", label], home)
    assert r.returncode == 0, r.stderr
    out = dict(line.split("=", 1) for line in r.stdout.splitlines())
    return out


@pytest.fixture
def home(tmp_path):
    return str(tmp_path)


@pytest.fixture
def env(start, ita_env, oidc, ee, state_dir, sessiond, home):
    """(cp, agent, device private key bytes, agent URL): paired."""
    cp, a = start_agent(start, ita_env, oidc, ee, state_dir, sessiond)
    out = pair_key(home)
    alice = Session(cp, a)
    r = alice.pair(out["pubkey"], "laptop")
    assert r.status in (200, 201), r.body
    dev = open(out["key_file"], "rb").read()
    wait_for(lambda: request(a.port, "GET", "/health").json()["noise"]["quote_b64"],
             what="the noise quote")
    return cp, a, dev, f"http://127.0.0.1:{a.port}"


def agent_pub(a):
    h = request(a.port, "GET", "/health").json()
    return bytes.fromhex(h["noise"]["pubkey_hex"])


# --- pair ----------------------------------------------------------------------

def test_pair_prints_the_key_and_enrollment_url_and_keeps_the_key(home):
    out = pair_key(home, label="alice laptop")
    path = os.path.join(home, "cfg", "devopsdefender", "device.key")
    assert out["key_file"] == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert len(out["pubkey"]) == 64 and int(out["pubkey"], 16) >= 0
    assert out["enroll_url"] == ("http://127.0.0.1:1/admin/enroll?pubkey="
                                 + out["pubkey"] + "&label=alice%20laptop")
    # The key file is the X25519 private key of that public key.
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    k = X25519PrivateKey.from_private_bytes(open(path, "rb").read())
    assert k.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw).hex() == out["pubkey"]
    # Again: the same key; the default label is the host name.
    r = client(["pair", "https://cp.example.com/"], home)
    again = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert again["pubkey"] == out["pubkey"]
    assert again["enroll_url"].startswith("https://cp.example.com/admin/enroll?pubkey=")
    assert again["enroll_url"].endswith("&label=" + socket.gethostname())


def test_pair_with_key_path_and_a_damaged_key(home):
    p = os.path.join(home, "k")
    assert client(["pair", "http://127.0.0.1:1", "--key", p], home).returncode == 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    open(p, "wb").write(b"short")
    r = client(["pair", "http://127.0.0.1:1", "--key", p], home)
    assert r.returncode == 1 and "device key" in r.stderr


def test_usage_errors(home):
    for args, why in ((["shell"], "which agent"),
                      (["replay", "http://127.0.0.1:1"], "SESSION_ID"),
                      (["replay", "http://127.0.0.1:1", "nope"], "UUID"),
                      (["shell", "http://10.0.0.1"], "loopback"),
                      (["shell", "h", "--expect-mrtd", "ab"], "96 hex"),
                      (["pair", "http://127.0.0.1:1", SIM], "pair takes only")):
        r = client(args, home)
        assert r.returncode == 2 and why in r.stderr, (args, r.stderr)
    r = client(["sessions", "http://127.0.0.1:1", SIM], home)
    assert r.returncode == 2 and "client pair" in r.stderr   # no key yet


# --- sessions and replay ---------------------------------------------------------

def make_session(a, dev, text):
    async def go():
        pub = agent_pub(a)
        c = await Noise.open(a.port, dev, pub)
        sid = (await c.call({"method": "shell.create_session"}))["id"]
        s = await Noise.open(a.port, dev, pub)
        await s.call({"method": "shell.attach_session", "id": sid})
        await s.send(text.encode() + b"\n")
        await read_until(s, b"marker-42")
        await s.ws.close()
        await c.ws.close()
        return sid
    return run(go())


def test_sessions_and_replay(env, home):
    _, a, dev, url = env
    sid = make_session(a, dev, "echo marker-$((40+2))")
    r = client(["sessions", url, SIM], home)
    assert r.returncode == 0, r.stderr
    assert sid in r.stdout and "running" in r.stdout and "shell" in r.stdout
    assert "SIMULATED" in r.stderr          # the warning on every connect

    def replayed():
        r = client(["replay", url, sid, SIM], home)
        return r if r.returncode == 0 and "marker-42" in r.stdout else None
    r = wait_for(replayed, what="the sealed history")
    assert "records opened" in r.stderr
    # Another device (paired too) cannot read this history... it was
    # sealed before it was paired; a device that is not paired cannot
    # even connect (below).


def test_a_large_replay_in_parts(env, home):
    _, a, dev, url = env
    sid = make_session(a, dev, "i=0; while [ $i -lt 2500 ]; do echo line-$i-"
                       + "x" * 80 + "; i=$((i+1)); done; echo marker-$((40+2))")

    def replayed():
        r = client(["replay", url, sid, SIM], home)
        return r if r.returncode == 0 and "line-2499-" in r.stdout else None
    r = wait_for(replayed, what="the whole history")
    assert "line-0-" in r.stdout


def test_refusals(env, home, tmp_path):
    _, a, _, url = env
    # Simulated quote without the flag.
    r = client(["sessions", url], home)
    assert r.returncode == 1
    assert "refusing to connect" in r.stderr and "quote: simulated" in r.stderr
    # A pinned measurement that is not this TD's.
    r = client(["sessions", url, SIM, "--expect-mrtd", "ab" * 48], home)
    assert r.returncode == 1 and "mrtd:" in r.stderr
    # The right one passes.
    import base64
    q = base64.b64decode(request(a.port, "GET", "/health").json()["noise"]["quote_b64"])
    mrtd = q[48 + 136:48 + 184].hex()
    r = client(["sessions", url, SIM, "--expect-mrtd", mrtd], home)
    assert r.returncode == 0, r.stderr
    # A device that is not paired: 1008 from the agent.
    other = str(tmp_path / "other")
    os.mkdir(other)
    pair_key(other)
    r = client(["sessions", url, SIM], other)
    assert r.returncode == 3 and "refused this device (1008 unknown peer)" in r.stderr
    # Unknown session.
    r = client(["shell", url, SIM, "--session",
                "00000000-0000-4000-8000-000000000000"], home)
    assert r.returncode == 1 and "refused" in r.stderr


# --- wss through a TLS server ----------------------------------------------------

def make_ca(d, leaves=None):
    """A test CA and leaves it signs, as (name, [SANs]): by default
    "good" for localhost/127.0.0.1 and "other" for another name. Files:
    ca.pem, then NAME.cert and NAME.key for each leaf."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dd test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                       False, False), True)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {"ca.pem": os.path.join(d, "ca.pem")}
    open(paths["ca.pem"], "wb").write(ca.public_bytes(pem))
    if leaves is None:
        leaves = (("good", [x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  ("other", [x509.DNSName("other.example")]))
    for serial, (name, sans) in enumerate(leaves, 2):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(sans), False)
                .sign(ca_key, hashes.SHA256()))
        paths[name + ".cert"] = os.path.join(d, name + ".cert.pem")
        paths[name + ".key"] = os.path.join(d, name + ".key.pem")
        open(paths[name + ".cert"], "wb").write(leaf.public_bytes(pem))
        open(paths[name + ".key"], "wb").write(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def server_ctx(paths, name):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(paths[name + ".cert"], paths[name + ".key"])
    return ctx


class TlsProxy:
    """TLS in front of the agent (as cloudflared is in production)."""

    def __init__(self, paths, upstream_port, later=None):
        """later: the certificate ("good", "other") of every connection
        after the first (the first is /health, fetched by libcurl; the
        later ones reach the client's own TLS relay)."""
        self.ctx = server_ctx(paths, "good")
        self.later = server_ctx(paths, later) if later else self.ctx
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(raw,), daemon=True).start()

    def one(self, raw):
        ctx = self.ctx if self.conns == 0 else self.later
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.conns += 1
        up = socket.create_connection(("127.0.0.1", self.upstream))

        def pump(src, dst):
            try:
                while True:
                    b = src.recv(65536)
                    if not b:
                        break
                    dst.sendall(b)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        t = threading.Thread(target=pump, args=(up, tls), daemon=True)
        t.start()
        pump(tls, up)
        t.join(5)
        tls.close()
        up.close()

    def close(self):
        self.sock.close()


def test_wss_through_tls_with_a_test_ca(env, home, tmp_path):
    _, a, dev, _ = env
    sid = make_session(a, dev, "echo marker-$((40+2))")
    paths = make_ca(str(tmp_path))
    proxy = TlsProxy(paths, a.port)
    try:
        url = f"https://localhost:{proxy.port}"
        r = client(["sessions", url, SIM, "--ca-file", paths["ca.pem"]], home)
        assert r.returncode == 0, r.stderr
        assert sid in r.stdout
        assert proxy.conns >= 2          # /health and /noise/ws both over TLS
        r = client(["sessions", url, SIM], home, DD_CA_FILE=paths["ca.pem"])
        assert r.returncode == 0, r.stderr
        # Without the CA the certificate is refused (by the health fetch).
        r = client(["sessions", url, SIM], home)
        assert r.returncode == 4 and sid not in r.stdout
        # An IP literal is verified against the IP SAN.
        r = client(["replay", f"https://127.0.0.1:{proxy.port}", sid, SIM,
                    "--ca-file", paths["ca.pem"]], home)
        assert r.returncode == 0 and "marker-42" in r.stdout, r.stderr
    finally:
        proxy.close()


@pytest.mark.parametrize("later,why", [("other", "Hostname mismatch")])
def test_the_relay_verifies_the_wss_certificate(env, home, tmp_path, later, why):
    """/health passes (a good certificate), then /noise/ws gets one signed by
    the same CA for another name: the client's own TLS must refuse it."""
    _, a, _, _ = env
    paths = make_ca(str(tmp_path))
    proxy = TlsProxy(paths, a.port, later=later)
    try:
        r = client(["sessions", f"https://localhost:{proxy.port}", SIM,
                    "--ca-file", paths["ca.pem"]], home)
        assert r.returncode != 0, r.stdout
        assert "TLS certificate of localhost refused" in r.stderr, r.stderr
        assert why.lower() in r.stderr.lower(), r.stderr
    finally:
        proxy.close()


def test_the_relay_refuses_an_unknown_ca(env, home, tmp_path):
    _, a, _, _ = env
    paths = make_ca(str(tmp_path))
    other = make_ca(str(tmp_path / "x") if os.mkdir(tmp_path / "x") is None else "")
    proxy = TlsProxy(paths, a.port)
    proxy.later = server_ctx(other, "good")   # same name, another CA
    try:
        r = client(["sessions", f"https://localhost:{proxy.port}", SIM,
                    "--ca-file", paths["ca.pem"]], home)
        assert r.returncode != 0
        assert "TLS certificate of localhost refused" in r.stderr, r.stderr
    finally:
        proxy.close()


# --- the terminal, under tmux ------------------------------------------------------

TMUX = shutil.which("tmux")


class Tmux:
    def __init__(self, name, sock):
        self.name, self.sock = name, sock

    def cmd(self, *args):
        return subprocess.run(["tmux", "-S", self.sock] + list(args),
                              capture_output=True, text=True, timeout=10)

    def screen(self):
        return self.cmd("capture-pane", "-p", "-t", self.name, "-S", "-200").stdout

    def wait(self, needle, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if needle in s:
                return s
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} not on screen:\n{self.screen()}")

    def keys(self, *keys):
        assert self.cmd("send-keys", "-t", self.name, *keys).returncode == 0


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_shell_under_tmux(env, home, tmp_path):
    _, a, dev, url = env
    sock = str(tmp_path / "tmux.sock")
    t = Tmux("dd", sock)
    script = tmp_path / "run.sh"
    # The outer shell keeps the pane alive after the client exits, so the
    # terminal's state afterwards can be read with stty.
    script.write_text(
        f"export XDG_CONFIG_HOME={home}/cfg HOME={home}\n"
        f"{DD_BIN} client shell {url} {SIM}; echo client-exit=$?\n"
        "stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo\n"
        "exec sleep 60\n")
    r = t.cmd("new-session", "-d", "-s", "dd", "-x", "100", "-y", "30",
              f"sh {script}")
    assert r.returncode == 0, r.stderr
    try:
        t.wait("Ctrl-] detaches")
        t.keys("echo hi$((40+2))", "Enter")
        t.wait("hi42")
        t.keys("stty size", "Enter")
        t.wait("30 100")
        t.cmd("resize-window", "-t", "dd", "-x", "120", "-y", "40")
        time.sleep(1.0)
        t.keys("stty size", "Enter")
        t.wait("40 120")
        t.keys("C-]")
        s = t.wait("client-exit=0")
        assert "detached from session" in s
        s = t.wait("icanon")
        line = [ln for ln in s.splitlines() if "icanon" in ln][-1]
        assert "-icanon" not in line and "-echo" not in line.split(), line
        assert "echo" in line.split()
        # The session is still there.
        r = client(["sessions", url, SIM], home)
        assert r.returncode == 0 and "running" in r.stdout
    finally:
        t.cmd("kill-server")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_shell_restores_the_terminal_on_sigterm(env, home, tmp_path):
    _, _, _, url = env
    sock = str(tmp_path / "tmux.sock")
    t = Tmux("dd", sock)
    script = tmp_path / "run.sh"
    script.write_text(
        f"export XDG_CONFIG_HOME={home}/cfg HOME={home}\n"
        # Not "&": a background job's stdin would be /dev/null, not the tty.
        f"sh -c 'echo pid=$$; exec {DD_BIN} client shell {url} {SIM}';"
        " echo client-exit=$?\n"
        "stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo\n"
        "exec sleep 60\n")
    assert t.cmd("new-session", "-d", "-s", "dd", "-x", "80", "-y", "24",
                 f"sh {script}").returncode == 0
    try:
        s = t.wait("Ctrl-] detaches")
        pid = int(s.split("pid=")[1].split()[0])
        os.kill(pid, 15)
        s = t.wait("client-exit=")
        assert "signal 15" in s
        s = t.wait("icanon")
        line = [ln for ln in s.splitlines() if "icanon" in ln][-1]
        assert "-icanon" not in line and "echo" in line.split(), line
    finally:
        t.cmd("kill-server")
