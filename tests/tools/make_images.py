#!/usr/bin/python3
"""make_images.py DIR -- writes synthetic DICOM images with known pixel values for the image
tests (names are what each one checks):
  gray16.dcm      4x2 MONOCHROME2 signed 16-bit, values -1000..2000, RescaleSlope 2,
                  RescaleIntercept -100, WindowCenter 300 / WindowWidth 801
  mono1.dcm       the same values as 8-bit MONOCHROME1 (0..255), no window
  palette.dcm     4x1 PALETTE COLOR 8-bit with a 256-entry 16-bit LUT
  multi.dcm       3 frames 2x2 unsigned 16-bit, frame k filled with 100*(k+1)
  slice_{0,1,2}.dcm  one series, positions along z in the order 2, 0, 1 (ordered-slices)
  bad_frames.dcm  NumberOfFrames 1000000 with one frame of data
  bad_length.dcm  Rows*Columns larger than the pixel data
  bad_huge.dcm    65535 x 65535 RGB 32-bit declared
  bad_jpeg.dcm    JPEG baseline syntax whose fragment is a truncated JPEG
  bad_mpeg.dcm    MPEG-2 syntax (we do not decode video: 415)
  bad_tiles.dcm   MR_small_jp2klossless.dcm (64x64) whose JPEG 2000 SIZ asks for 1x1 tiles and
                  then a wider image: 8192 tiles (OpenJPEG would allocate for each: refused)
  bad_vr.dcm      bad_jpeg.dcm with VR OV on its PixelData (DCMTK then reads it as another
                  class than pixel data: found by the fuzzer)
"""
import os, sys
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
study, series = generate_uid(), generate_uid()

def base(rows, cols, bits, signed=False, spp=1, pi='MONOCHROME2', ts=ExplicitVRLittleEndian, series_uid=None):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
    ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.PatientName = 'IMG', 'Images^Synthetic'
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = 'OT'
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = pi
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds

def save(ds, name):
    ds.save_as(os.path.join(out, name), write_like_original=False)

g = np.array([[-1000, 0, 100, 500], [1000, 1500, 2000, 300]], dtype=np.int16)
ds = base(2, 4, 16, signed=True)
ds.RescaleSlope, ds.RescaleIntercept = 2, -100
ds.WindowCenter, ds.WindowWidth = 300, 801
ds.PixelData = g.tobytes()
save(ds, 'gray16.dcm')

m = np.array([[0, 10, 128, 255], [1, 2, 3, 4]], dtype=np.uint8)
ds = base(2, 4, 8, pi='MONOCHROME1')
ds.PixelData = m.tobytes()
save(ds, 'mono1.dcm')

ds = base(1, 4, 8, pi='PALETTE COLOR')
lut = np.arange(256, dtype=np.uint16)
for c, data in (('Red', lut * 256), ('Green', (255 - lut) * 256), ('Blue', np.full(256, 0x8000, np.uint16))):
    setattr(ds, f'{c}PaletteColorLookupTableDescriptor', [256, 0, 16])
    setattr(ds, f'{c}PaletteColorLookupTableData', data.astype('<u2').tobytes())
ds.PixelData = np.array([0, 1, 128, 255], dtype=np.uint8).tobytes()
save(ds, 'palette.dcm')

ds = base(2, 2, 16)
ds.NumberOfFrames = 3
ds.PixelData = np.concatenate([np.full(4, 100 * (k + 1), np.uint16) for k in range(3)]).tobytes()
save(ds, 'multi.dcm')

sl = generate_uid()
for i, z in enumerate((20.0, 0.0, 10.0)):
    ds = base(2, 2, 16, series_uid=sl)
    ds.ImagePositionPatient = [0, 0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.InstanceNumber = i + 1
    ds.PixelData = np.full(4, i, np.uint16).tobytes()
    save(ds, f'slice_{i}.dcm')

ds = base(2, 2, 16)
ds.NumberOfFrames = 1000000
ds.PixelData = np.zeros(4, np.uint16).tobytes()
save(ds, 'bad_frames.dcm')

ds = base(512, 512, 16)
ds.PixelData = np.zeros(16, np.uint16).tobytes()
save(ds, 'bad_length.dcm')

ds = base(65535, 65535, 32, spp=3, pi='RGB')
ds.PixelData = np.zeros(6, np.uint32).tobytes()
save(ds, 'bad_huge.dcm')

ds = base(8, 8, 8, ts='1.2.840.10008.1.2.4.50')
ds.PixelData = encapsulate([b'\xff\xd8\xff\xdb\x00\x43\x00' + bytes(20)])
ds['PixelData'].is_undefined_length = True
save(ds, 'bad_jpeg.dcm')

ds = base(8, 8, 8, ts='1.2.840.10008.1.2.4.100')
ds.PixelData = encapsulate([bytes(64)])
ds['PixelData'].is_undefined_length = True
save(ds, 'bad_mpeg.dcm')

# bad_jpeg.dcm with the VR of its PixelData (encapsulated, undefined length) turned into OV
raw = open(os.path.join(out, 'bad_jpeg.dcm'), 'rb').read()
head = b'\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff'
assert raw.count(head) == 1
open(os.path.join(out, 'bad_vr.dcm'), 'wb').write(raw.replace(head, head[:4] + b'OV' + head[6:]))

# JPEG 2000 with 1x1-pixel tiles: the SIZ's XTsiz, YTsiz (bytes 24..31 after SOC, SIZ marker and
# Lsiz) set to 1, Xsiz doubled so that the tiles (128 x 64) pass the 4096 limit
src = pydicom.dcmread(os.path.join(os.environ.get('PYDICOM_FILES', '/usr/lib/python3/dist-packages/pydicom/data/test_files'), 'MR_small_jp2klossless.dcm'))
raw = bytearray(src.PixelData)
i = raw.find(b'\xff\x4f\xff\x51')
assert i > 0
z = i + 4
raw[z + 4:z + 8] = (128).to_bytes(4, 'big')
raw[z + 20:z + 28] = (1).to_bytes(4, 'big') * 2
src.PixelData = bytes(raw)
src.Columns = 128
src.save_as(os.path.join(out, 'bad_tiles.dcm'), write_like_original=True)
