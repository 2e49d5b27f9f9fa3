"""A DNS server for tests: UDP and TCP on one random port of 127.0.0.1.

Answers A and AAAA from a table the test edits while it runs; any other
name is NXDOMAIN. Per name, a record can also ask for a truncated UDP
reply (TC set, no answers: the client must retry over TCP) or for
silence (no reply at all: the client times out). Every question is
counted by (name, qtype, transport). TTLs are 0.

Only what a resolver's A/AAAA question needs is parsed: one question,
uncompressed name. Anything else is answered FORMERR or ignored.
"""
import ipaddress
import socket
import struct
import threading

A, AAAA = 1, 28
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3


class FakeDNS:
    def __init__(self):
        self.lock = threading.Lock()
        self.table = {}     # name -> {"a": [...], "aaaa": [...], "tc": bool, "silent": bool}
        self.seen = []      # (name, qtype, "udp" | "tcp")
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.stopping = False
        for fn in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=fn, daemon=True).start()

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    # --- the table -------------------------------------------------------

    def set(self, name, a=(), aaaa=(), tc=False, silent=False):
        with self.lock:
            self.table[name.lower().rstrip(".")] = {
                "a": list(a), "aaaa": list(aaaa), "tc": tc, "silent": silent}

    def remove(self, name):
        with self.lock:
            self.table.pop(name.lower().rstrip("."), None)

    def count(self, name=None, transport=None):
        with self.lock:
            return sum(1 for n, _, t in self.seen
                       if (name is None or n == name.lower()) and
                       (transport is None or t == transport))

    # --- the protocol ----------------------------------------------------

    @staticmethod
    def _question(msg):
        """(id, flags, name, qtype, question bytes) or None."""
        if len(msg) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", msg[:6])
        if qd != 1 or flags & 0x8000:
            return None
        off, labels = 12, []
        while True:
            if off >= len(msg):
                return None
            n = msg[off]
            if n == 0:
                off += 1
                break
            if n > 63 or off + 1 + n > len(msg):
                return None
            labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
            off += 1 + n
        if off + 4 > len(msg):
            return None
        qtype, = struct.unpack("!H", msg[off:off + 2])
        return qid, flags, ".".join(labels).lower(), qtype, msg[12:off + 4]

    def answer(self, msg, transport):
        """The reply to msg, or None for silence."""
        q = self._question(msg)
        if q is None:
            if len(msg) < 2:
                return None
            return msg[:2] + struct.pack("!HHHHH", 0x8180 | FORMERR, 0, 0, 0, 0)
        qid, flags, name, qtype, question = q
        with self.lock:
            self.seen.append((name, qtype, transport))
            rec = self.table.get(name)
            rec = dict(rec) if rec else None
        if rec is not None and rec["silent"]:
            return None
        rd = flags & 0x0100
        if rec is None:
            return struct.pack("!HHHHHH", qid, 0x8080 | rd | NXDOMAIN,
                               1, 0, 0, 0) + question
        if rec["tc"] and transport == "udp":
            return struct.pack("!HHHHHH", qid, 0x8280 | rd | NOERROR,
                               1, 0, 0, 0) + question
        answers = b""
        addrs = rec["a"] if qtype == A else rec["aaaa"] if qtype == AAAA else []
        for addr in addrs:
            data = ipaddress.ip_address(addr).packed
            answers += struct.pack("!HHHIH", 0xc00c, qtype, 1, 0, len(data)) + data
        return struct.pack("!HHHHHH", qid, 0x8080 | rd | NOERROR, 1,
                           len(addrs), 0, 0) + question + answers

    def _serve_udp(self):
        while not self.stopping:
            try:
                msg, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            reply = self.answer(msg, "udp")
            if reply is not None:
                try:
                    self.udp.sendto(reply, peer)
                except OSError:
                    pass

    def _serve_tcp(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,),
                             daemon=True).start()

    def _conn(self, conn):
        buf = b""
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while len(buf) >= 2:
                    n, = struct.unpack("!H", buf[:2])
                    if len(buf) < 2 + n:
                        break
                    reply = self.answer(buf[2:2 + n], "tcp")
                    buf = buf[2 + n:]
                    if reply is not None:
                        try:
                            conn.sendall(struct.pack("!H", len(reply)) + reply)
                        except OSError:
                            return

    def stop(self):
        self.stopping = True
        for s in (self.udp, self.tcp):
            try:
                s.close()
            except OSError:
                pass
