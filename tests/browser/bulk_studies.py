#!/usr/bin/python3
"""bulk_studies.py URL COUNT [USER:PASS] -- stores COUNT small one-instance studies (no pixel
data, ~500 bytes each) through POST /instances, 8 keep-alive connections in parallel: the
index of the list-performance check. One template file is written with pydicom; each copy
only changes fixed-width numbers in it (names, IDs, UIDs, dates), so generating costs nothing
next to the upload. The HTTP client is a few lines over plain sockets (one request in flight
a connection, the answer read by its Content-Length): http.client's header parsing cost a
third of the scenario's CPU, on a machine where the server under test shares 2 cores."""
import base64
import warnings
import io
import re
import socket
import sys
import threading
import urllib.parse

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

warnings.simplefilter("ignore")  # the placeholders are not valid UIDs or dates until replaced
url, count = sys.argv[1], int(sys.argv[2])
auth = {"Authorization": "Basic " + base64.b64encode(sys.argv[3].encode()).decode()} if len(sys.argv) > 3 else {}
ROOT = "1.2.826.0.1.3680043.8.498.77"
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
meta.MediaStorageSOPInstanceUID = f"{ROOT}.3.#######"
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = Dataset()
ds.file_meta = meta
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.PatientName = "Bulk^Patient#######"
ds.PatientID = "BULK#######"
ds.PatientBirthDate = "19700101"
ds.StudyInstanceUID = f"{ROOT}.1.#######"
ds.SeriesInstanceUID = f"{ROOT}.2.#######"
ds.StudyDate = "2020#####"[:8]
ds.StudyDescription = "Bulk study #######"
ds.AccessionNumber = "A#######"
ds.Modality = "OT"
ds.SeriesNumber = 1
ds.InstanceNumber = 1
buf = io.BytesIO()
ds.save_as(buf, enforce_file_format=True) if "enforce_file_format" in ds.save_as.__code__.co_varnames else ds.save_as(buf, write_like_original=False)
template = buf.getvalue()
assert template.count(b"#######") == 8, template.count(b"#######")


def make(i):
    d = template.replace(b"#######", b"%07d" % i)
    day = 1 + i % 28
    return d.replace(b"2020####", b"2020%02d%02d" % (1 + i % 12, day))


u = urllib.parse.urlparse(url)
errors = []


def worker(k, n):
    c = socket.create_connection((u.hostname, u.port), timeout=60)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = ("POST /instances HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/dicom\r\n%s"
            "Content-Length: " % (u.hostname, u.port, "".join("%s: %s\r\n" % kv for kv in auth.items()))).encode()
    pending = b""
    for i in range(k, count, n):
        body = make(i)
        c.sendall(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        while b"\r\n\r\n" not in pending:
            chunk = c.recv(65536)
            if not chunk:
                errors.append("connection closed")
                return
            pending += chunk
        top, pending = pending.split(b"\r\n\r\n", 1)
        status = int(top.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)", top)
        want = int(m.group(1)) if m else 0
        while len(pending) < want:
            chunk = c.recv(65536)
            if not chunk:
                errors.append("connection closed")
                return
            pending += chunk
        pending = pending[want:]
        if status != 200:
            errors.append(status)
    c.close()


threads = [threading.Thread(target=worker, args=(k, 8)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit(f"bulk: {len(errors)} uploads failed, e.g. HTTP {errors[0]}")
