#!/usr/bin/python3
"""large_dicom.py OUT MEGABYTES [SEED] -- writes a valid DICOM file of about MEGABYTES MB.

The header is made with pydicom (explicit VR little endian, multi-frame 16-bit monochrome);
the pixel data element is appended by hand and written in 1 MB chunks, so making a 1.5 GB file
needs a few MB of memory. The pixels are pseudo-random bytes (SEED), so two files differ and a
wrong byte anywhere shows in an MD5. Prints the file's MD5.
"""
import hashlib
import random
import struct
import sys

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out, mb = sys.argv[1], float(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rows = cols = 512
frame = rows * cols * 2
frames = max(1, int(mb * 1024 * 1024 // frame))

meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word SC
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = Dataset()
ds.file_meta = meta
ds.is_little_endian = True
ds.is_implicit_VR = False
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.PatientID = "LARGE-%d" % seed
ds.PatientName = "Large^Upload"
ds.StudyInstanceUID = generate_uid()
ds.SeriesInstanceUID = generate_uid()
ds.Modality = "OT"
ds.SamplesPerPixel = 1
ds.PhotometricInterpretation = "MONOCHROME2"
ds.Rows = rows
ds.Columns = cols
ds.NumberOfFrames = frames
ds.BitsAllocated = 16
ds.BitsStored = 16
ds.HighBit = 15
ds.PixelRepresentation = 0
ds.save_as(out, write_like_original=False)

rng = random.Random(seed)
chunk = bytes(rng.getrandbits(8) for _ in range(1 << 16)) * 16  # 1 MB, varied by the seed
total = frames * frame
with open(out, "ab") as f:
    f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, total))
    left = total
    i = 0
    while left:
        n = min(left, len(chunk))
        # the frame index in each chunk's first bytes: no two chunks alike
        part = struct.pack("<Q", i) + chunk[8:n] if n >= 8 else chunk[:n]
        f.write(part)
        left -= n
        i += 1
h = hashlib.md5()
with open(out, "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())
