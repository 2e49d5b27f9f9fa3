"""A stand-in for Linux configfs-tsm (/sys/kernel/config/tsm/report), so the
CP's tsm quote provider (src/attest/tsm.c) runs end to end without TDX.

What the provider does, and what this plays back (the same protocol as
tests/unit/tsm_standin.h, which the C unit tests use):

  provider                          stand-in (a thread, inotify via ctypes)
  mkdir ROOT/dd-<random>            sees IN_CREATE|IN_ISDIR; creates
                                    `generation` ("0\\n"), `outblob` as a
                                    FIFO (so a read blocks until the quote
                                    exists, as on configfs) and, last,
                                    an empty `inblob`
  (waits for inblob to appear)
  reads generation (g0)
  writes 64 bytes to inblob, closes sees IN_CLOSE_WRITE with 64 bytes;
                                    writes generation g0+1, then the quote
                                    into the FIFO, and closes it
  reads outblob to EOF
  reads generation (g1 == g0+1)
  unlinks the files, rmdirs         forgets the entry

The quote is tests/data/tdx/edgeless-tdx-v4.bin, a real v4 quote, with its
REPORTDATA (offset 568) replaced by the inblob bytes (and its MRTD, offset
184, replaced when the `mrtd` knob is set). Its signature therefore no
longer verifies: that is fine for the fake ITA (tests/e2e/fake_ita.py),
which does not verify quote signatures, and would be refused by real ITA
or by the project's offline verifier.

Knobs (attributes, change them any time): `empty_outblob` (answer with
nothing: the provider reports no quote-generation service), `gen_step`
(generation advance per quote; anything but 1 looks like a racing writer),
`delay` (seconds before answering, to hold a quote "in generation"),
`mrtd` (hex, patched into the quote). Counters: `served`,
`last_report_data`.

Usage:
    with TsmStandin() as tsm:        # tsm.root is a fresh temp dir
        env["DD_TSM_ROOT"] = tsm.root
"""
import ctypes
import errno
import ctypes.util
import os
import select
import shutil
import struct
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUOTE_FILE = os.path.join(ROOT, "tests", "data", "tdx", "edgeless-tdx-v4.bin")
MRTD_OFF = 184
REPORT_DATA_OFF = 568

IN_CLOSE_WRITE = 0x00000008
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


def base_quote():
    with open(QUOTE_FILE, "rb") as f:
        return f.read()


def quote_for(report_data, mrtd=None, base=None):
    """The stand-in's quote for 64 bytes of report data."""
    q = bytearray(base if base is not None else base_quote())
    assert len(report_data) == 64
    q[REPORT_DATA_OFF:REPORT_DATA_OFF + 64] = report_data
    if mrtd is not None:
        m = bytes.fromhex(mrtd)
        assert len(m) == 48
        q[MRTD_OFF:MRTD_OFF + 48] = m
    return bytes(q)


class _Entry:
    def __init__(self, path):
        self.path = path
        self.served = False


class TsmStandin:
    def __init__(self, root=None, answer_timeout=5.0):
        self._own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="dd-tsm-")
        self.answer_timeout = answer_timeout
        self.empty_outblob = False
        self.gen_step = 1
        self.delay = 0.0
        self.mrtd = None
        self.served = 0
        self.last_report_data = None
        self.errors = []
        self._base = base_quote()
        self._entries = {}  # wd -> _Entry
        self._ino = -1
        self._stop_r = self._stop_w = -1
        self._thread = None

    def start(self):
        self._ino = _check(_libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK),
                           "inotify_init1")
        _check(_libc.inotify_add_watch(self._ino, self.root.encode(), IN_CREATE),
               "inotify_add_watch")
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="tsm-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is None:
            return
        os.write(self._stop_w, b"x")
        self._thread.join(10)
        alive = self._thread.is_alive()
        self._thread = None
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)
        if not alive:
            os.close(self._ino)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
        assert not alive, "tsm stand-in thread did not stop"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the watcher thread --

    def _stopping(self, timeout=0.0):
        r, _, _ = select.select([self._stop_r], [], [], timeout)
        return bool(r)

    def _run(self):
        while True:
            r, _, _ = select.select([self._ino, self._stop_r], [], [])
            if self._stop_r in r:
                return
            try:
                buf = os.read(self._ino, 65536)
            except BlockingIOError:
                continue
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, n = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size:off + _EVENT.size + n].rstrip(b"\0")
                off += _EVENT.size + n
                try:
                    self._event(wd, mask, name.decode())
                except Exception as e:  # recorded for the tests to see
                    self.errors.append(repr(e))

    def _event(self, wd, mask, name):
        if mask & IN_IGNORED:
            self._entries.pop(wd, None)
            return
        if (mask & IN_CREATE) and (mask & IN_ISDIR) and wd not in self._entries:
            self._new_entry(os.path.join(self.root, name))
        elif (mask & IN_CLOSE_WRITE) and name == "inblob":
            e = self._entries.get(wd)
            if e is not None and not e.served:
                self._maybe_serve(e)

    def _new_entry(self, d):
        # generation and outblob first: inblob appearing is the provider's
        # signal that the entry is ready.
        with open(os.path.join(d, "generation"), "w") as f:
            f.write("0\n")
        os.mkfifo(os.path.join(d, "outblob"), 0o600)
        wd = _check(_libc.inotify_add_watch(self._ino, d.encode(),
                                            IN_CLOSE_WRITE | IN_DELETE_SELF),
                    "inotify_add_watch")
        self._entries[wd] = _Entry(d)
        open(os.path.join(d, "inblob"), "wb").close()

    def _maybe_serve(self, e):
        try:
            with open(os.path.join(e.path, "inblob"), "rb") as f:
                rd = f.read()
        except FileNotFoundError:
            return
        if len(rd) != 64:
            return  # our own empty inblob, or a partial write
        e.served = True
        if self.delay and self._stopping(self.delay):
            return
        quote = b"" if self.empty_outblob else quote_for(rd, self.mrtd, self._base)
        with open(os.path.join(e.path, "generation"), "r+") as f:
            g = int(f.read().strip() or "0")
            f.seek(0)
            f.truncate()
            f.write(f"{g + self.gen_step}\n")
        # Never block forever on a provider that went away: wait for its
        # reader with O_NONBLOCK (ENXIO until one opens) under a deadline.
        path = os.path.join(e.path, "outblob")
        deadline = time.monotonic() + self.answer_timeout
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as err:
                if err.errno != errno.ENXIO:  # ENXIO: no reader yet
                    return
                if time.monotonic() > deadline or self._stopping(0.005):
                    self.errors.append(f"no reader on {path}")
                    return
        try:
            os.set_blocking(fd, True)
            view = memoryview(quote)
            while view:
                w = os.write(fd, view)
                view = view[w:]
        finally:
            os.close(fd)
        self.served += 1
        self.last_report_data = rd
