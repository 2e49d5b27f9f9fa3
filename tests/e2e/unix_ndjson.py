"""A small client for the NDJSON unix sockets of `devopsdefender runtime`
and `devopsdefender sessiond`: one connection, several requests with one
reply line each, and after an attach the raw stream."""
import json
import socket
import time


class Conn:
    """One connection: several requests, one reply line each."""

    def __init__(self, path, token=None, timeout=15.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.token = token
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError(f"closed; pending {self.buf[:200]!r}")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def reply(self):
        return json.loads(self.line())

    def call(self, obj):
        if self.token is not None:
            obj = dict(obj, token=self.token)
        self.send(json.dumps(obj).encode() + b"\n")
        return self.reply()

    def read_until(self, needle, timeout=10.0):
        """Raw bytes (attach) until needle shows up."""
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            self.buf += d
        return self.buf

    def closed(self, timeout=10.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
