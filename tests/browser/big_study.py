#!/usr/bin/python3
"""big_study.py URL COUNT FILE -- stores one study of COUNT instances through POST /instances
(4 keep-alive connections): copies of FILE (a pydicom test file, with its pixels) under new
SOPInstanceUIDs, one series, PatientID "PRG-0042", PatientName "Progress^Test",
AccessionNumber "ACC2026-0042". A job on it (anonymize) takes long enough for its progress to
be seen between 0 and 100 %. Prints the study's StudyInstanceUID."""
import http.client
import io
import sys
import threading
import urllib.parse

import pydicom

url, count, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ROOT = "1.2.826.0.1.3680043.8.498.42"
ds = pydicom.dcmread(src)
ds.PatientID = "PRG-0042"
ds.PatientName = "Progress^Test"
ds.AccessionNumber = "ACC2026-0042"
ds.StudyDescription = "Progress study"
ds.StudyInstanceUID = f"{ROOT}.1"
ds.SeriesInstanceUID = f"{ROOT}.2"
files = []
for i in range(count):
    ds.SOPInstanceUID = f"{ROOT}.3.{i + 1}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = i + 1
    b = io.BytesIO()
    ds.save_as(b)
    files.append(b.getvalue())
u = urllib.parse.urlparse(url)
errors = []


def worker(k, n):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    for i in range(k, count, n):
        c.request("POST", "/instances", body=files[i], headers={"Content-Type": "application/dicom"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            errors.append(r.status)
    c.close()


threads = [threading.Thread(target=worker, args=(k, 4)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit(f"big_study: {len(errors)} uploads failed, e.g. HTTP {errors[0]}")
print(ds.StudyInstanceUID)
