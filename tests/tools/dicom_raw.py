#!/usr/bin/python3
"""dicom_raw.py -- a tiny hand-written DICOM upper-layer client for the integration tests.

DCMTK's tools cannot hold an association open and idle, nor send a dataset that does not
parse; this module can. Used as a module (import dicom_raw) or from the command line:

  dicom_raw.py dsbytes FILE            print the size and SHA-1 of the dataset part of a file
  dicom_raw.py garbage PORT            C-STORE an unparseable dataset, then C-ECHO on the same
                                       association; prints both statuses ("c000 0")
"""
import hashlib
import socket
import struct
import sys
import time

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
FIND_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"


def _item(t, data):
    return struct.pack(">BBH", t, 0, len(data)) + data


def associate_rq(called, calling, contexts, max_pdu=16384):
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + b"\0" * 32
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for pcid, asx, tss in contexts:
        sub = _item(0x30, asx.encode()) + b"".join(_item(0x40, t.encode()) for t in tss)
        body += _item(0x20, struct.pack(">BBBB", pcid, 0, 0, 0) + sub)
    body += _item(0x50, _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, b"1.2.3.4.5"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def read_pdu(s):
    head = _recv_exact(s, 6)
    t, _, n = struct.unpack(">BBI", head)
    return t, _recv_exact(s, n)


def _elem(group, elem, value):
    if isinstance(value, int):
        value = struct.pack("<H", value)
    elif isinstance(value, str):
        value = value.encode()
        if len(value) % 2:
            value += b"\0"
    return struct.pack("<HHI", group, elem, len(value)) + value


def command(fields):
    body = b"".join(_elem(0, e, v) for e, v in fields)
    return _elem(0, 0, struct.pack("<I", len(body))) + body


def parse_command(data):
    out, i = {}, 0
    while i + 8 <= len(data):
        g, e, n = struct.unpack("<HHI", data[i:i + 8])
        out[(g, e)] = data[i + 8:i + 8 + n]
        i += 8 + n
    return out


class Assoc:
    """One association. .result: 2 accepted (A-ASSOCIATE-AC), 3 rejected (.reject = (result,
    source, reason)), 7 aborted."""

    def __init__(self, port, called="ORTHANC", calling="RAWSCU", contexts=None, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout)
        self.msg_id = 0
        ctx = contexts or [(1, VERIFICATION, [IMPLICIT_LE]), (3, CT_IMAGE, [EXPLICIT_LE])]
        self.s.sendall(associate_rq(called, calling, ctx))
        self.result, body = read_pdu(self.s)
        self.reject = tuple(body[1:4]) if self.result == 3 else None
        self.max_pdu = None  # what the acceptor's A-ASSOCIATE-AC announces
        if self.result == 2:
            i = 68
            while i + 4 <= len(body):
                t, n = body[i], struct.unpack(">H", body[i + 2:i + 4])[0]
                if t == 0x50:
                    j = i + 4
                    while j + 4 <= i + 4 + n:
                        st, sn = body[j], struct.unpack(">H", body[j + 2:j + 4])[0]
                        if st == 0x51:
                            self.max_pdu = struct.unpack(">I", body[j + 4:j + 8])[0]
                        j += 4 + sn
                i += 4 + n

    def _pdata(self, pcid, payload, is_command):
        ctrl = (1 if is_command else 0) | 2
        pdv = struct.pack(">IBB", len(payload) + 2, pcid, ctrl) + payload
        self.s.sendall(struct.pack(">BBI", 4, 0, len(pdv)) + pdv)

    def _response(self):
        data = b""
        while True:
            t, body = read_pdu(self.s)
            if t != 4:
                raise EOFError("PDU type %d instead of P-DATA" % t)
            i = 0
            while i < len(body):
                n, _pcid, ctrl = struct.unpack(">IBB", body[i:i + 6])
                data += body[i + 6:i + 4 + n]
                i += 4 + n
                if ctrl & 3 == 3:
                    return parse_command(data)

    def echo(self, pcid=1):
        self.msg_id += 1
        self._pdata(pcid, command([(0x0002, VERIFICATION), (0x0100, 0x0030), (0x0110, self.msg_id),
                                   (0x0800, 0x0101)]), True)
        return struct.unpack("<H", self._response()[(0, 0x0900)])[0]

    def store(self, dataset, sop_instance="1.2.3.4.5.6.7", pcid=3, sop_class=CT_IMAGE):
        self.msg_id += 1
        self._pdata(pcid, command([(0x0002, sop_class), (0x0100, 0x0001), (0x0110, self.msg_id),
                                   (0x0700, 0), (0x0800, 0x0000), (0x1000, sop_instance)]), True)
        self._pdata(pcid, dataset, False)
        return struct.unpack("<H", self._response()[(0, 0x0900)])[0]

    def store_begin(self, sop_instance, pcid=3, sop_class=CT_IMAGE):
        """Sends a C-STORE-RQ command only; the dataset follows through fragment()."""
        self.msg_id += 1
        self._pdata(pcid, command([(0x0002, sop_class), (0x0100, 0x0001), (0x0110, self.msg_id),
                                   (0x0700, 0), (0x0800, 0x0000), (0x1000, sop_instance)]), True)

    def fragment(self, data, last, pcid=3):
        """One P-DATA-TF with one dataset PDV (last: its last-fragment bit)."""
        ctrl = 2 if last else 0
        pdv = struct.pack(">IBB", len(data) + 2, pcid, ctrl) + data
        self.s.sendall(struct.pack(">BBI", 4, 0, len(pdv)) + pdv)

    def find(self, identifier, pcid=1, sop_class=FIND_STUDY_ROOT, collect=False):
        """C-FIND with an identifier already encoded (see identifier()) on context pcid (implicit
        little endian). Returns (final status, number of answers[, answer datasets as bytes]).
        Reads greedily into one buffer and decodes only what it must (PDU and PDV headers, the
        status of each command), so that a benchmark times the server, not this client."""
        self.msg_id += 1
        self._pdata(pcid, command([(0x0002, sop_class), (0x0100, 0x0020), (0x0110, self.msg_id),
                                   (0x0700, 0), (0x0800, 0x0000)]), True)
        self._pdata(pcid, identifier, False)
        buf = getattr(self, "_pending", b"")
        pos, count, cmd, ds, datasets = 0, 0, b"", b"", []
        unpack = struct.unpack_from
        while True:
            while len(buf) - pos < 6 or len(buf) - pos < 6 + unpack(">I", buf, pos + 2)[0]:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise EOFError("connection closed")
                buf = buf[pos:] + chunk
                pos = 0
            t, n = buf[pos], unpack(">I", buf, pos + 2)[0]
            if t != 4:
                raise EOFError("PDU type %d instead of P-DATA" % t)
            i, end = pos + 6, pos + 6 + n
            pos = end
            while i < end:
                ln, ctrl = unpack(">I", buf, i)[0], buf[i + 5]
                frag = buf[i + 6:i + 4 + ln]
                i += 4 + ln
                if not ctrl & 1:
                    if collect:
                        ds += frag
                        if ctrl & 2:
                            datasets.append(ds)
                            ds = b""
                    continue
                cmd += frag
                if not ctrl & 2:
                    continue
                st, k = None, 0
                while k + 8 <= len(cmd):
                    g, e, vl = unpack("<HHI", cmd, k)
                    if g == 0 and e == 0x0900:
                        st = unpack("<H", cmd, k + 8)[0]
                    k += 8 + vl
                cmd = b""
                if st in (0xFF00, 0xFF01):
                    count += 1
                    continue
                self._pending = buf[pos:]
                return (st, count, datasets) if collect else (st, count)

    def release(self):
        self.s.sendall(struct.pack(">BBI", 5, 0, 4) + b"\0" * 4)
        t, _ = read_pdu(self.s)
        self.s.close()
        return t == 6

    def wait_closed(self, limit=30.0):
        """Seconds until the peer closes or aborts (None if still open after `limit`)."""
        t0 = time.time()
        self.s.settimeout(limit)
        try:
            while True:
                t, _ = read_pdu(self.s)
                if t == 7:
                    return time.time() - t0
        except EOFError:
            return time.time() - t0
        except socket.timeout:
            return None
        except OSError:
            return time.time() - t0

    def close(self):
        self.s.close()


def identifier(keys):
    """An implicit little endian identifier from [(tag, value)] (tag as 0xggggeeee), in tag
    order; string values padded to even length with a space (UIDs with a NUL)."""
    out = b""
    for tag, value in sorted(keys):
        v = value.encode()
        if len(v) % 2:
            v += b"\0" if tag in (0x0020000D, 0x0020000E, 0x00080018, 0x00080016) else b" "
        out += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(v)) + v
    return out


def dataset_bytes(path):
    """The dataset part of a Part-10 file (after the meta group), or the whole file."""
    data = open(path, "rb").read()
    if data[128:132] != b"DICM":
        return data
    gl = struct.unpack("<I", data[140:144])[0]
    return data[144 + gl:]


if __name__ == "__main__":
    if sys.argv[1] == "dsbytes":
        d = dataset_bytes(sys.argv[2])
        print(len(d), hashlib.sha1(d).hexdigest())
    elif sys.argv[1] == "garbage":
        a = Assoc(int(sys.argv[2]))
        assert a.result == 2, a.result
        # an element whose length runs past the end of the dataset
        st = a.store(b"\x08\x00\x16\x00UI\x1a\x00" + CT_IMAGE.encode() + b"\0" + b"\x10\x00\x20\x00LO\xff\x7f")
        st2 = a.echo()
        a.release()
        print("%04x %x" % (st, st2))
