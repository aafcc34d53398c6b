#!/usr/bin/python3
"""Generates a synthetic CT study: N instances of 512x512 16-bit (about 0.5 MB each), one
patient, one study, `--series` series, explicit VR little endian Part-10 files.

usage: gen_study.py OUTDIR N [--series K] [--patient ID] [--seed S] [--frames F] [--noise SIGMA]
With --frames F > 1 writes one multi-frame instance of F frames instead (N ignored).
--noise SIGMA adds Gaussian noise (SIGMA grey levels, seeded) to each image: the plain pattern
deflates to 3 % of its size, which flatters an archiver that compresses (real CT: 40-60 %);
with SIGMA 8 it deflates to about 75 %."""
import argparse
import os
import random

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MF_CT = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("n", type=int)
    ap.add_argument("--series", type=int, default=1)
    ap.add_argument("--patient", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, default=1)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--noise", type=float, default=0.0)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.outdir, exist_ok=True)
    pid = a.patient or "PAT%06d" % rnd.randrange(10**6)
    study = generate_uid()
    series = [generate_uid() for _ in range(a.series)]
    rows = cols = a.size
    base = (np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) * 7) % 4096
    count = 1 if a.frames > 1 else a.n
    for i in range(count):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = MF_CT if a.frames > 1 else CT_IMAGE
        ds.SOPInstanceUID = generate_uid()
        ds.StudyDate = "20260101"
        ds.StudyTime = "120000"
        ds.AccessionNumber = "ACC%05d" % a.seed
        ds.Modality = "CT"
        ds.Manufacturer = "minipacs-gen"
        ds.InstitutionName = "General Hospital"
        ds.ReferringPhysicianName = "Doe^John"
        ds.StudyDescription = "Generated CT"
        ds.SeriesDescription = "Axial %d" % (i % a.series)
        ds.PatientName = "Test^Patient^%s" % pid
        ds.PatientID = pid
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series[i % a.series]
        ds.StudyID = "1"
        ds.SeriesNumber = i % a.series + 1
        ds.InstanceNumber = i // a.series + 1
        ds.ImagePositionPatient = [0, 0, float(i)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        if a.frames > 1:
            ds.NumberOfFrames = a.frames
            frame = ((base + i) % 4096).tobytes()
            ds.PixelData = frame * a.frames
        elif a.noise > 0:
            noise = np.random.default_rng(a.seed * 1000003 + i).normal(0, a.noise, (rows, cols))
            ds.PixelData = np.clip((base + i) % 4096 + noise, 0, 4095).astype(np.uint16).tobytes()
        else:
            ds.PixelData = ((base + i) % 4096).astype(np.uint16).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.preamble = b"\0" * 128
        path = os.path.join(a.outdir, "img%05d.dcm" % i)
        try:
            ds.save_as(path, enforce_file_format=True)
        except TypeError:
            ds.is_little_endian = True
            ds.is_implicit_VR = False
            ds.save_as(path, write_like_original=False)


if __name__ == "__main__":
    main()
