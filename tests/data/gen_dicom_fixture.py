# Generates tests/data/dicom_fixture.dcm (synthetic, no real patient) for tests/unit/test_dicom.c.
# Run from tests/data with /usr/bin/python3 (pydicom 2.x).
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1.2.3"
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = Dataset()
ds.file_meta = meta
ds.SpecificCharacterSet = "ISO_IR 100"
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1.2"
ds.Modality = "OT"
ds.PatientName = "M\u00fcller^J\u00fcrgen"
ds.PatientID = "  MP-0001 "
ds.ReferringPhysicianName = ""
ds.ImageType = ["ORIGINAL", "PRIMARY"]
ds.add_new(0x00324000, "LT", "x" * 300)  # StudyComments
ds.ProcedureCodeSequence = Sequence([Dataset(), Dataset()])
ds.ProcedureCodeSequence[0].CodeValue = "A1"
ds.ProcedureCodeSequence[0].CodeMeaning = "First"
ds.ProcedureCodeSequence[1].CodeValue = "B2"
icon = Dataset()
icon.Rows = 2; icon.Columns = 2; icon.BitsAllocated = 8; icon.BitsStored = 8; icon.HighBit = 7
icon.PixelRepresentation = 0; icon.SamplesPerPixel = 1; icon.PhotometricInterpretation = "MONOCHROME2"
icon.PixelData = b"\x01\x02\x03\x04"
ds.IconImageSequence = Sequence([icon])
ds.add_new(0x00090010, "LO", "MINIPACS TEST")
ds.add_new(0x00091001, "LO", "private value")
ds.add_new(0x00091002, "UL", 42)
ds.add_new(0x00280106, "US", None)
ds.PixelSpacing = [0.5, 0.25]
ds.Rows = 4; ds.Columns = 4; ds.BitsAllocated = 16; ds.BitsStored = 16; ds.HighBit = 15
ds.PixelRepresentation = 0; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
ds.PixelData = bytes(range(32))
ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 8)
ds.is_little_endian = True; ds.is_implicit_VR = False
ds.save_as("dicom_fixture.dcm", write_like_original=False)
