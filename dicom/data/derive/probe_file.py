import csv, sys
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.datadict import dictionary_VR
rows = []
for line in open(sys.argv[1]):
    if line.startswith('#') or line.startswith('tag,'): continue
    t = line.split(',')[0]
    rows.append(t)
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
meta.MediaStorageSOPInstanceUID = "1.2.3.999.1"
meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
ds = FileDataset("x", {}, file_meta=meta, preamble=b"\0"*128)
ds.is_implicit_VR = False; ds.is_little_endian = True
tags = []
for t in rows:
    if ':' in t:
        g0 = t.split('-')[0]; e0 = t.split(':')[1].split('-')[0]
        tags.append(int(g0 + (e0 if e0 != '0000' else '0010'), 16))
        continue
    tags.append(int(t, 16))
# extra tags, not in 2023b's table, that older editions may list
extra = [0x00081080, 0x00102180, 0x00101090, 0x00380500, 0x00102000, 0x00180015, 0x00081040, 0x00204000, 0x00321070]
tags += extra
used = []
for n, tag in enumerate(sorted(set(tags))):
    g = tag >> 16
    if g in (0x0000, 0x0002) or tag in (0x7FE00010, 0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x00100010, 0x00100020, 0x00080005):
        continue
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        continue
    vr = vr.split(' or ')[0]
    if vr in ('OB', 'OW', 'UN', 'OF', 'OD', 'OL', 'OV'): v = b"\x01\x02"; 
    elif vr == 'SQ':
        it = Dataset(); it.add_new(0x00080100, 'SH', 'CODE1'); v = Sequence([it])
    elif vr == 'UI': v = "1.2.3.%d" % (n + 1)
    elif vr in ('DA',): v = "20010203"
    elif vr == 'TM': v = "101010"
    elif vr == 'DT': v = "20010203101010"
    elif vr in ('DS', 'IS'): v = "7"
    elif vr in ('US', 'SS', 'UL', 'SL', 'UV', 'SV'): v = 7
    elif vr in ('FL', 'FD'): v = 7.0
    elif vr == 'AT': v = 0x00100010
    elif vr == 'AS': v = "042Y"
    elif vr == 'CS': v = "ABC"
    elif vr == 'AE': v = "AET"
    elif vr == 'UR': v = "http://x"
    else: v = "TEXT%d" % n
    try:
        ds.add_new(tag, vr, v); used.append(tag)
    except Exception as ex:
        print("skip", hex(tag), vr, ex, file=sys.stderr)
ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.StudyInstanceUID = "1.2.3.999.2"; ds.SeriesInstanceUID = "1.2.3.999.3"; ds.PatientName = "A^B"; ds.PatientID = "P"
ds.save_as(sys.argv[2], write_like_original=False)
print(len(used))
