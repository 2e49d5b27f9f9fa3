"""WebSocket end to end through the real server: an independent client
(python3-websockets) for the happy paths, raw frames for the hostile
ones."""
import asyncio
import base64
import os
import signal
import socket
import struct
import time

import pytest
import websockets

from conftest import TESTSERVER, Reader, connect, request

KEY = base64.b64encode(os.urandom(16)).decode()


@pytest.fixture
def srv(start):
    return start([TESTSERVER], {"DD_WS_MAX_MESSAGE": "65536"})


def run(coro):
    return asyncio.run(coro)


def test_echo_text_binary_and_large(srv):
    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws/echo",
                                      compression=None, max_size=2 ** 20) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01\xff")
            assert await ws.recv() == b"\x00\x01\xff"
            big = os.urandom(60000)
            await ws.send(big)
            assert await ws.recv() == big
            # Fragmented message, reassembled by the server.
            await ws.send(iter([b"ab", b"cd", b"ef"]))
            assert await ws.recv() == b"abcdef"
            pong = await ws.ping(b"p")
            await asyncio.wait_for(pong, 3)
            await ws.send("close")
            with pytest.raises(websockets.ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000
            assert ws.close_reason == "bye"
    run(go())


def test_oversized_message_closes_1009(srv):
    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws/echo",
                                      compression=None, max_size=2 ** 20) as ws:
            await ws.send(b"x" * 70000)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009
    run(go())


def test_many_clients_at_once(srv):
    async def one(i):
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws/echo",
                                      compression=None) as ws:
            for j in range(5):
                await ws.send(f"{i}-{j}")
                assert await ws.recv() == f"{i}-{j}"

    async def go():
        await asyncio.gather(*(one(i) for i in range(50)))
    run(go())


# --- handshake ---------------------------------------------------------------

def upgrade_request(path="/ws/echo", **over):
    h = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    h.update(over)
    head = f"GET {path} HTTP/1.1\r\n" + "".join(
        f"{k.replace('_', '-')}: {v}\r\n" for k, v in h.items() if v is not None)
    return (head + "\r\n").encode()


@pytest.mark.parametrize("over,status", [
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Sec-WebSocket-Version": None}, 426),
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),        # 5 bytes, not 16
    ({"Sec-WebSocket-Key": "!!notbase64!!!!!!!!!!!=="}, 400),
    ({"Upgrade": "h2c"}, 400),
    ({"Upgrade": None}, 400),
    ({"Connection": "keep-alive"}, 400),
], ids=["version-8", "no-version", "no-key", "short-key", "bad-key",
        "upgrade-h2c", "no-upgrade", "no-connection-upgrade"])
def test_bad_upgrade_requests(srv, over, status):
    s = connect(srv.port)
    s.sendall(upgrade_request(**over))
    r = Reader(s).response()
    assert r.status == status
    assert set(r.json()) == {"code", "message"}
    if status == 426:
        assert r.header("sec-websocket-version") == "13"
    s.close()


def test_upgrade_with_post_is_refused(srv):
    r = request(srv.port, "POST", "/ws/echo",
                {"Upgrade": "websocket", "Connection": "Upgrade",
                 "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"})
    assert r.status == 405


# --- raw frames --------------------------------------------------------------

def open_raw(port):
    s = connect(port)
    s.sendall(upgrade_request())
    rd = Reader(s)
    r = rd.response()
    assert r.status == 101
    assert r.header("upgrade").lower() == "websocket"
    assert r.header("x-request-id")
    return s, rd


def frame(op, payload=b"", fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(rd):
    rd.sock.settimeout(5)
    while len(rd.buf) < 2:
        rd._fill()
    b0, b1 = rd.buf[0], rd.buf[1]
    n, off = b1 & 0x7F, 2
    if n == 126:
        while len(rd.buf) < 4:
            rd._fill()
        n, off = struct.unpack("!H", rd.buf[2:4])[0], 4
    elif n == 127:
        while len(rd.buf) < 10:
            rd._fill()
        n, off = struct.unpack("!Q", rd.buf[2:10])[0], 10
    assert not (b1 & 0x80), "server frames must not be masked"
    while len(rd.buf) < off + n:
        rd._fill()
    payload = rd.buf[off:off + n]
    rd.buf = rd.buf[off + n:]
    return b0 & 0x0F, payload


def expect_close(rd, code):
    op, payload = read_frame(rd)
    assert op == 8, (op, payload)
    assert struct.unpack("!H", payload[:2])[0] == code
    assert rd.closed(6)


def test_raw_echo_and_server_frames_unmasked(srv):
    s, rd = open_raw(srv.port)
    s.sendall(frame(2, b"raw"))
    assert read_frame(rd) == (2, b"raw")
    s.sendall(frame(9, b"pi"))
    assert read_frame(rd) == (10, b"pi")
    s.sendall(frame(8, struct.pack("!H", 1000)))
    op, payload = read_frame(rd)
    assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1000
    assert rd.closed(6)


@pytest.mark.parametrize("data,code", [
    (frame(2, b"unmasked", mask=False), 1002),
    (frame(3, b"x"), 1002),                        # reserved data opcode
    (frame(11, b"x"), 1002),                       # reserved control opcode
    (frame(2, b"x", rsv=4), 1002),                 # RSV1 without extension
    (frame(9, b"p" * 126), 1002),                  # control frame > 125
    (frame(9, b"p", fin=False), 1002),             # fragmented control
    (frame(0, b"x"), 1002),                        # continuation with nothing open
    (frame(2, b"a", fin=False) + frame(2, b"b"), 1002),  # new message mid-fragment
    (frame(8, struct.pack("!H", 1005)), 1002),     # reserved close code
    (frame(8, struct.pack("!H", 999)), 1002),
    (frame(8, b"\x03"), 1002),                     # one-byte close payload
    (frame(1, b"\xff\xfe"), 1007),                 # text not UTF-8
    (frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
    (frame(2, b"y" * 70000), 1009),
], ids=["unmasked", "opcode3", "opcode11", "rsv1", "long-control",
        "fragmented-control", "stray-continuation", "interleaved-message",
        "close-1005", "close-999", "close-1-byte", "text-not-utf8",
        "close-reason-not-utf8", "oversized"])
def test_protocol_violations(srv, data, code):
    s, rd = open_raw(srv.port)
    s.sendall(data)
    expect_close(rd, code)
    s.close()


def test_announced_oversize_closes_before_payload(srv):
    s, rd = open_raw(srv.port)
    # Claims 2^40 bytes; nothing but the header is ever sent.
    s.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40) + os.urandom(4))
    expect_close(rd, 1009)


def test_abrupt_disconnect_and_server_survives(srv):
    for _ in range(20):
        s, rd = open_raw(srv.port)
        s.sendall(frame(2, b"x" * 100)[:50])
        s.close()
    assert request(srv.port, path="/hello").status == 200


def test_shutdown_says_going_away(srv):
    s, rd = open_raw(srv.port)
    s.sendall(frame(1, b"hi"))
    assert read_frame(rd) == (1, b"hi")
    srv.send_signal(signal.SIGTERM)
    op, payload = read_frame(rd)
    assert op == 8 and struct.unpack("!H", payload[:2])[0] == 1001
    s.sendall(frame(8, struct.pack("!H", 1001)))
    assert rd.closed(6)
    assert srv.proc.wait(10) == 0
