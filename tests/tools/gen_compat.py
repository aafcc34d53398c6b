#!/usr/bin/env python3
"""gen_compat.py OUT [OUT2]: a CT instance for the modify/anonymize compatibility scenarios:
private tags (creator MyCreator, 0009,1010 LO / 0009,1012 UL) at top level and in a sequence,
an AT element, reference sequences naming the instance's own UIDs, nested items with profile
tags. OUT2 (optional): the same plus binary (OB) and SQ elements that the profile clears,
inside and outside sequences (SOPInstanceUID ...3.9)."""
import sys, pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
out = sys.argv[1]
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.3.1"
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = FileDataset(out, {}, file_meta=meta, preamble=b"\0"*128)
ds.SpecificCharacterSet = "ISO_IR 100"
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = "1.2.3.4.5.3.1"
ds.StudyInstanceUID = "1.2.3.4.5.1"
ds.SeriesInstanceUID = "1.2.3.4.5.2"
ds.PatientName = "Doe^John"; ds.PatientID = "PID1"; ds.PatientBirthDate = "19700101"
ds.Modality = "CT"; ds.StudyDate = "20200101"; ds.StudyDescription = "desc"; ds.InstitutionName = "Hosp"
ds.AccessionNumber = "ACC1"; ds.StudyID = "S1"; ds.SeriesNumber = "1"; ds.InstanceNumber = "1"
ds.FrameOfReferenceUID = "1.2.3.4.5.9"
ds.add_new(0x00090010, "LO", "MyCreator")
ds.add_new(0x00091010, "LO", "orig-private")
ds.add_new(0x00091012, "UL", 7)
ds.add_new(0x00200052, "UI", "1.2.3.4.5.9")
ds.add_new(0x00209165, "AT", [0x00209056])  # DimensionIndexPointer? (0020,9165) AT
src = Dataset(); src.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"; src.ReferencedSOPInstanceUID = "1.2.3.4.5.3.1"
src.ReferencedFrameNumber = "1"
ds.SourceImageSequence = Sequence([src])
rs = Dataset(); rs.SeriesInstanceUID = "1.2.3.4.5.2"
ri = Dataset(); ri.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"; ri.ReferencedSOPInstanceUID = "1.2.3.4.5.3.2"
rs.ReferencedInstanceSequence = Sequence([ri])
ds.ReferencedSeriesSequence = Sequence([rs])
ra1 = Dataset(); ra1.RequestedProcedureID = "RP1"; ra1.ScheduledProcedureStepID = "SP1"
ra1.StudyInstanceUID = "1.2.3.4.5.1"
ra1.add_new(0x00090010, "LO", "MyCreator"); ra1.add_new(0x00091010, "LO", "nested-private")
ra1.PatientBirthDate = "19700101"; ra1.InstitutionName = "NestedHosp"
ra1.ContentCreatorName = "Creator^X"
ra1.add_new(0x00181400, "LO", "acq device proc") 
ra2 = Dataset(); ra2.RequestedProcedureID = "RP2"; ra2.ScheduledProcedureStepID = "SP2"
ds.RequestAttributesSequence = Sequence([ra1, ra2])
ds.ContentCreatorName = "Creator^Top"
ds.Rows = 2; ds.Columns = 2; ds.BitsAllocated = 8; ds.BitsStored = 8; ds.HighBit = 7
ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"; ds.PixelRepresentation = 0
ds.PixelData = b"\x01\x02\x03\x04"
ds.is_implicit_VR = False; ds.is_little_endian = True
ds.save_as(out, write_like_original=False)
if len(sys.argv) > 2:
    vo = Dataset(); vo.VerifyingObserverName = "Obs^A"; vo.VerificationDateTime = "20200101120000"
    ds.VerifyingObserverSequence = Sequence([vo])
    ds.add_new(0x00340002, "OB", b"\x01\x02")
    ar = Dataset(); ar.CodeValue = "T-1"; ar.CodingSchemeDesignator = "SRT"; ar.CodeMeaning = "x"
    vo2 = Dataset(); vo2.VerifyingObserverName = "Obs^B"
    ar.VerifyingObserverSequence = Sequence([vo2])
    ar.add_new(0x00340002, "OB", b"\x03\x04")
    ar.add_new(0x00340007, "OB", b"\x05\x06")
    ar.ContentCreatorName = "Nested^Creator"; ar.PatientBirthDate = "19800101"; ar.InstitutionName = "NH2"
    ar.add_new(0x00091010, "LO", "no-creator-private")
    ds.AnatomicRegionSequence = Sequence([ar])
    ps = Dataset(); ps.PatientName = "In^PrivateSeq"
    ds.add_new(0x00091020, "SQ", Sequence([ps]))
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.3.9"
    ds.save_as(sys.argv[2], write_like_original=False)
