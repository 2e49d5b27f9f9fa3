"""The agent's /noise/ws gateway end to end, driven by a second Noise
implementation written for the tests (noise_py.py, proven on the public
vectors below first): a real CP, agent and sessiond; devices paired
through the agent's API as a person would.

Spec: noise-sessions 2.7-2.11, 4 and 8.2, with this project's changes
(handshake deadline, oversized messages refused, req_id, split replays,
confidential mode, revocation closes connections)."""
import asyncio
import json
import os

import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import noise_py as N
from conftest import DD_BIN, request
from test_agent_api import OWNER, agent_env, ee, oidc  # noqa: F401 (fixtures)
from test_devices import Session, state_dir, wait_for  # noqa: F401 (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(ROOT, "tests", "data", "noise", "vectors.json")
UUID0 = "00000000-0000-4000-8000-000000000000"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def new_device():
    k = X25519PrivateKey.generate()
    return k.private_bytes(serialization.Encoding.Raw,
                           serialization.PrivateFormat.Raw,
                           serialization.NoEncryption())


# --- the test's own Noise first ------------------------------------------------

def test_the_python_noise_matches_the_public_vectors():
    b = bytes.fromhex
    checked = 0
    for v in json.load(open(VECTORS))["vectors"]:
        i = N.Initiator(b(v["init_static"]), b(v["init_remote_static"]),
                        b(v["init_prologue"]), b(v["init_ephemeral"]))
        r = N.Responder(b(v["resp_static"]), b(v["resp_prologue"]),
                        b(v["resp_ephemeral"]))
        m = v["messages"]
        c1 = i.write1(b(m[0]["payload"]))
        assert c1.hex() == m[0]["ciphertext"]
        assert r.read1(c1) == b(m[0]["payload"])
        c2 = r.write2(b(m[1]["payload"]))
        assert c2.hex() == m[1]["ciphertext"]
        assert i.read2(c2) == b(m[1]["payload"])
        if "handshake_hash" in v:
            assert i.handshake_hash.hex() == v["handshake_hash"]
        for k, msg in enumerate(m[2:]):
            snd, rcv = (i.send, r.recv) if k % 2 == 0 else (r.send, i.recv)
            ct = snd.encrypt(b"", b(msg["payload"]))
            assert ct.hex() == msg["ciphertext"]
            assert rcv.decrypt(b"", ct) == b(msg["payload"])
        checked += 1
    assert checked >= 2


# --- a client ------------------------------------------------------------------

class Noise:
    """One /noise/ws connection from a device."""

    def __init__(self, ws, init):
        self.ws, self.init = ws, init

    @classmethod
    async def open(cls, port, device, agent_pub, payload=b""):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/noise/ws",
                                      compression=None, max_size=2 ** 20)
        init = N.Initiator(device, agent_pub)
        await ws.send(init.write1(payload))
        init.read2(await asyncio.wait_for(ws.recv(), 10))
        return cls(ws, init)

    async def send(self, data):
        await self.ws.send(self.init.send.encrypt(b"", data))

    async def recv(self):
        return self.init.recv.decrypt(b"", await asyncio.wait_for(self.ws.recv(), 15))

    async def call(self, obj):
        await self.send(json.dumps(obj).encode())
        return json.loads(await self.recv())

    async def closed(self):
        """Waits for the server to end the connection: (code, reason)."""
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), 15)
        return self.ws.close_code, self.ws.close_reason


def agent_pub(a):
    h = request(a.port, "GET", "/health").json()
    return bytes.fromhex(h["noise"]["pubkey_hex"])


@pytest.fixture(autouse=True)
def _dir_outlives_processes(state_dir):
    """Autouse fixtures come first: the state directory is made before
    `start` and removed after it has stopped every process (sessiond
    writes there until it is stopped)."""
    yield


@pytest.fixture
def sessiond(start, state_dir):
    sock = os.path.join(state_dir, "sd.sock")
    sd = start([DD_BIN, "sessiond"], {"DD_SESSIOND_SOCKET": sock,
                                      "DD_SESSIOND_DIR": os.path.join(state_dir, "hist")})
    sd.sock = sock
    return sd


def start_agent(start, ita_env, oidc, ee, state_dir, sessiond, **extra):
    cp = start([DD_BIN, "cp"], dict(ita_env, **OWNER))
    a = start([DD_BIN, "agent"], agent_env(
        ita_env, oidc, ee, DD_CP_URL=f"http://127.0.0.1:{cp.port}",
        DD_AGENT_DEVICES_PATH=os.path.join(state_dir, "data", "devices.json"),
        DD_NOISE_KEY_PATH=os.path.join(state_dir, "noise.key"),
        DD_SESSIOND_SOCKET=sessiond.sock, **extra))
    return cp, a


@pytest.fixture
def gw(start, ita_env, oidc, ee, state_dir, sessiond):
    """(agent, paired device private key, agent public key, admin session)."""
    cp, a = start_agent(start, ita_env, oidc, ee, state_dir, sessiond)
    alice = Session(cp, a)
    dev = new_device()
    r = alice.pair(N.public_of(dev).hex(), "laptop")
    assert r.status in (200, 201), r.body
    return a, dev, agent_pub(a), alice


# --- the handshake -------------------------------------------------------------

def test_paired_device_lists_recipes_and_sessions(gw):
    a, dev, pub, _ = gw

    async def go():
        c = await Noise.open(a.port, dev, pub)
        recipes = await c.call({"method": "shell.list_recipes"})
        assert isinstance(recipes, list) and recipes
        assert any(r["id"] == "shell" for r in recipes)
        assert await c.call({"method": "shell.list_sessions"}) == []
        await c.ws.close()
    run(go())


def test_an_unpaired_device_gets_1008_and_no_message_2(gw):
    a, _, pub, _ = gw

    async def go():
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/noise/ws",
                                      compression=None)
        await ws.send(N.Initiator(new_device(), pub).write1())
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)   # no message 2 first
        assert ws.close_code == 1008 and ws.close_reason == "unknown peer"
    run(go())


def test_wrong_responder_key_or_tampering_drops_silently(gw):
    a, dev, pub, _ = gw

    async def attempt(msg):
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/noise/ws",
                                      compression=None)
        await ws.send(msg)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return ws.close_code

    async def go():
        other = N.public_of(new_device())
        assert await attempt(N.Initiator(dev, other).write1()) == 1006
        m = bytearray(N.Initiator(dev, pub).write1())
        m[40] ^= 1                      # inside the encrypted static key
        assert await attempt(bytes(m)) == 1006
        assert await attempt(b"\x00" * 10) == 1006   # too short to parse
        # All-zero and low-order ephemeral keys: refused, not trusted.
        assert await attempt(b"\x00" * 32 + bytes(N.Initiator(dev, pub).write1()[32:])) == 1006
    run(go())


def test_text_and_pings_are_ignored_and_payloads_accepted(gw):
    a, dev, pub, _ = gw

    async def go():
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/noise/ws",
                                      compression=None)
        await ws.send("ignored text")
        await asyncio.wait_for(await ws.ping(b"p"), 5)
        init = N.Initiator(dev, pub)
        await ws.send(init.write1(b"a payload the agent ignores"))
        init.read2(await asyncio.wait_for(ws.recv(), 10))
        c = Noise(ws, init)
        await ws.send("more text")
        assert isinstance(await c.call({"method": "shell.list_recipes"}), list)
        await ws.close()
    run(go())


def test_a_stalled_handshake_is_dropped(start, ita_env, oidc, ee, state_dir,
                                        sessiond):
    _, a = start_agent(start, ita_env, oidc, ee, state_dir, sessiond,
                       DD_NOISE_HANDSHAKE_MS="500")

    async def go():
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/noise/ws",
                                      compression=None)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    run(go())


def test_an_oversized_message_is_refused(gw):
    a, dev, pub, _ = gw

    async def go():
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/noise/ws",
                                      compression=None)
        await ws.send(b"\x00" * 65536)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1009
    run(go())


# --- the transport -------------------------------------------------------------

def test_envelope_errors_and_in_order_pipelining(gw):
    a, dev, pub, _ = gw

    async def go():
        c = await Noise.open(a.port, dev, pub)
        r = await c.call({"no": "method"})
        assert r["error"] == "method_rejected" and "`method`" in r["detail"]
        r = await c.call({"method": "deploy"})
        assert r["error"] == "method_rejected" and "allowlist" in r["detail"]
        r = await c.call({"method": "rm -rf"})
        assert r["error"] == "method_rejected" and "unknown method" in r["detail"]
        r = await c.call({"method": "shell.close_session"})
        assert r["error"] == "shell_failed" and "missing `id`" in r["detail"]
        r = await c.call({"method": "shell.close_session", "id": "../../etc"})
        assert r["error"] == "shell_failed"
        r = await c.call({"method": "shell.create_session", "command": "/bin/sh"})
        assert r["error"] == "method_rejected"
        r = await c.call({"method": "shell.close_session", "id": UUID0})
        assert r["error"] == "shell_failed" and "not_found" in r["detail"]
        # Pipelined, with req_id: answered in order, each tagged.
        for i in range(10):
            await c.send(json.dumps({"method": "shell.list_recipes",
                                     "req_id": i}).encode())
        for i in range(10):
            r = json.loads(await c.recv())
            assert r["req_id"] == i and isinstance(r["result"], list)
        r = await c.call({"method": "health", "req_id": "h"})
        assert r["req_id"] == "h"
        await c.ws.close()
    run(go())


def test_garbage_replay_and_second_handshake_drop(gw):
    a, dev, pub, _ = gw

    async def go():
        # Not JSON: dropped.
        c = await Noise.open(a.port, dev, pub)
        await c.send(b"\xff not json")
        assert (await c.closed())[0] == 1006
        # A replayed transport message: its nonce is spent, dropped.
        c = await Noise.open(a.port, dev, pub)
        ct = c.init.send.encrypt(b"", b'{"method":"shell.list_recipes"}')
        await c.ws.send(ct)
        await c.recv()
        await c.ws.send(ct)
        assert (await c.closed())[0] == 1006
        # A second message 1 after the handshake: not a transport message.
        c = await Noise.open(a.port, dev, pub)
        await c.ws.send(N.Initiator(dev, pub).write1())
        assert (await c.closed())[0] == 1006
        # Random bytes after the handshake.
        c = await Noise.open(a.port, dev, pub)
        await c.ws.send(os.urandom(100))
        assert (await c.closed())[0] == 1006
    run(go())


# --- shells --------------------------------------------------------------------

async def read_until(c, needle, limit=200):
    got = b""
    for _ in range(limit):
        got += await c.recv()
        if needle in got:
            return got
    raise AssertionError(f"{needle!r} not in {got!r}")


def test_create_attach_type_resize_close(gw):
    a, dev, pub, _ = gw

    async def go():
        c = await Noise.open(a.port, dev, pub)
        sid = (await c.call({"method": "shell.create_session",
                             "recipe_id": "shell"}))["id"]
        assert len(sid) == 36
        r = await c.call({"method": "shell.resize_session", "id": sid,
                          "cols": 100, "rows": 30})
        assert r == {"ok": True}
        s = await Noise.open(a.port, dev, pub)
        ack = await s.call({"method": "shell.attach_session", "id": sid})
        assert ack["ok"] is True and ack["id"] == sid
        await s.send(b"echo hi$((1+1))\n")
        await read_until(s, b"hi2")
        await s.send(b"stty size\n")
        await read_until(s, b"30 100")
        lst = await c.call({"method": "shell.list_sessions"})
        assert [x["id"] for x in lst] == [sid]
        assert await c.call({"method": "shell.close_session", "id": sid}) == {"ok": True}
        code, _ = await s.closed()
        assert code == 1000
        await c.ws.close()
    run(go())


def test_a_large_replay_comes_in_parts(gw):
    a, dev, pub, _ = gw

    async def go():
        c = await Noise.open(a.port, dev, pub)
        sid = (await c.call({"method": "shell.create_session"}))["id"]
        s = await Noise.open(a.port, dev, pub)
        await s.call({"method": "shell.attach_session", "id": sid})
        # ~300 KiB of output: many sealed records.
        await s.send(b"i=0; while [ $i -lt 3000 ]; do echo line-$i-"
                     + b"x" * 80 + b"; i=$((i+1)); done; echo DONE\n")
        await read_until(s, b"DONE\r\n", limit=5000)
        await asyncio.sleep(1.5)         # history is flushed in batches
        await c.send(json.dumps({"method": "shell.replay_session",
                                 "id": sid, "req_id": 7}).encode())
        parts = []
        while True:
            r = json.loads(await c.recv())
            assert r["req_id"] == 7 and "error" not in r, r
            parts.append(r)
            if not r.get("more"):
                break
        assert len(parts) > 1
        assert all(p["id"] == sid and p["version"] == 2 for p in parts)
        assert sum(len(p["records"]) for p in parts) > 10
        # The connection is still good afterwards.
        assert isinstance(await c.call({"method": "shell.list_recipes"}), list)
        await s.ws.close()
        await c.ws.close()
    run(go())


def test_revocation_cuts_an_attached_shell(gw):
    a, dev, pub, alice = gw

    async def go():
        c = await Noise.open(a.port, dev, pub)
        sid = (await c.call({"method": "shell.create_session"}))["id"]
        s = await Noise.open(a.port, dev, pub)
        await s.call({"method": "shell.attach_session", "id": sid})
        r = alice.revoke(N.public_of(dev).hex())
        assert r.status in (200, 204), r.body
        code, reason = await s.closed()
        assert code == 1008 and reason == "device revoked"
        assert (await c.closed()) == (1008, "device revoked")
        # And it cannot come back.
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/noise/ws",
                                      compression=None)
        await ws.send(N.Initiator(dev, pub).write1())
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1008
    run(go())


def test_confidential_mode_refuses_shells_and_exec(start, ita_env, oidc, ee,
                                                   state_dir, sessiond):
    cp, a = start_agent(start, ita_env, oidc, ee, state_dir, sessiond,
                        DD_CONFIDENTIAL="1")
    alice = Session(cp, a)
    dev = new_device()
    assert alice.pair(N.public_of(dev).hex(), "laptop").status in (200, 201)
    pub = agent_pub(a)

    async def go():
        c = await Noise.open(a.port, dev, pub)
        for m in ("shell.create_session", "exec", "attach"):
            r = await c.call({"method": m, "cmd": ["id"]})
            assert r["error"] == "method_rejected" and "confidential" in r["detail"]
        r = await c.call({"method": "shell.attach_session", "id": UUID0})
        assert r["error"] == "method_rejected"
        assert isinstance(await c.call({"method": "shell.list_recipes"}), list)
        await c.ws.close()
    run(go())
