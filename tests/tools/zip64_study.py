#!/usr/bin/python3
"""zip64_study.py make DIR N PARTS | check ZIP N -- the Zip64 scenario's two halves.
make: PARTS ZIP files (DIR/part-K.zip) holding together N tiny DICOM instances of one study
(one series, no pixel data, 532 bytes each: only the SOPInstanceUID differs), and DIR/one.dcm,
the template with its number as 9999999.
check: the server's ZIP of that study is a valid Zip64 archive (the Zip64 end of central
directory record and its locator, the classic record saturated at 0xFFFF entries), Python's
zipfile lists exactly N entries with unique names, every CRC matches (testzip), and each entry
is byte for byte the uploaded file of one instance number 0..N-1 (each number once); a few
entries also parse with pydicom."""
import io, struct, sys, zipfile
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

STUDY = '1.2.826.0.1.3680043.8.498.64.1'
MARK = b'9999999'


def template():
    ds = Dataset()
    ds.PatientID = 'ZIP64'
    ds.PatientName = 'Zip^Sixtyfour'
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = STUDY + '.1'
    ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
    ds.Modality = 'OT'
    ds.SOPInstanceUID = STUDY + '.1.' + MARK.decode()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    b = io.BytesIO()
    ds.save_as(b, write_like_original=False)
    t = b.getvalue()
    assert t.count(MARK) == 2
    return t


def make(d, n, parts):
    t = template()
    open(f'{d}/one.dcm', 'wb').write(t)
    per = (n + parts - 1) // parts
    for k in range(parts):
        with zipfile.ZipFile(f'{d}/part-{k}.zip', 'w', zipfile.ZIP_STORED) as z:
            for i in range(k * per, min(n, (k + 1) * per)):
                z.writestr('%07d.dcm' % i, t.replace(MARK, b'%07d' % i))


def fail(what):
    print('FAIL:', what)
    sys.exit(1)


def check(path, n):
    data = open(path, 'rb').read()
    eocd = data.rfind(b'PK\x05\x06')
    loc = data.rfind(b'PK\x06\x07', 0, eocd)
    z64 = data.rfind(b'PK\x06\x06', 0, loc)
    if eocd < 0 or loc < 0 or z64 < 0 or loc != eocd - 20:
        fail(f'no Zip64 end records (eocd {eocd}, locator {loc}, zip64 eocd {z64})')
    disk_entries, total_entries = struct.unpack('<HH', data[eocd + 8:eocd + 12])
    if (disk_entries, total_entries) != (0xFFFF, 0xFFFF):
        fail(f'classic end record counts {disk_entries}, {total_entries}')
    (z64_off,) = struct.unpack('<Q', data[loc + 8:loc + 16])
    if z64_off != z64:
        fail(f'the locator points at {z64_off}, the record is at {z64}')
    (count,) = struct.unpack('<Q', data[z64 + 32:z64 + 40])
    if count != n:
        fail(f'Zip64 record says {count} entries, expected {n}')
    z = zipfile.ZipFile(io.BytesIO(data))
    infos = z.infolist()
    names = [i.filename for i in infos]
    if len(infos) != n or len(set(names)) != n:
        fail(f'{len(infos)} entries ({len(set(names))} names), expected {n}')
    bad = z.testzip()
    if bad:
        fail(f'CRC error in {bad}')
    t = template()
    seen = bytearray(n)
    for i in infos:
        b = z.read(i)
        pos = b.find((STUDY + '.1.').encode())
        num = int(b[pos + len(STUDY) + 3:pos + len(STUDY) + 10])
        if not 0 <= num < n or seen[num] or b != t.replace(MARK, b'%07d' % num):
            fail(f'{i.filename}: not the uploaded instance {num}')
        seen[num] = 1
    for i in (infos[0], infos[n // 2], infos[-1]):
        ds = pydicom.dcmread(io.BytesIO(z.read(i)))
        if ds.StudyInstanceUID != STUDY:
            fail(f'{i.filename} does not parse as the study')
    print(f'Zip64 archive: {n} entries, {len(data)} bytes, every entry the uploaded file')


if __name__ == '__main__':
    if sys.argv[1] == 'make':
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        check(sys.argv[2], int(sys.argv[3]))
