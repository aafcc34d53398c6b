#!/usr/bin/python3
"""check_archive.py URL STUDYDIR -- archives, media, ZIP uploads and transcoding against a
running server (MaximumUploadSize 8 MB, OverwriteInstances false):
  - STUDYDIR's files (2,000 small CT instances from gen_study.py) uploaded as ONE ZIP
    (POST /instances answers a JSON array with every instance);
  - a create-archive job of that study, fetched from /jobs/{id}/archive: Python's zipfile opens
    it, 2,000 entries named as Orthanc names them, every entry equal to the stored file;
  - GET /{patients,studies,series}/{id}/archive streamed: same checks;
  - /media and /tools/create-media: IMAGES/IMn entries and a DICOMDIR that dcmdump reads and
    that lists every SOP instance of the resource;
  - /tools/create-archive with two resources of different studies, with a study and one of its
    series (each instance once), and with Transcode;
  - /instances/{id}/file?transcode= to JPEG-LS lossless and RLE: pixels equal after decoding;
    to JPEG 2000: 415;
  - ZIP bombs: declared sizes beyond the limit (413 before anything is stored), an entry that
    inflates beyond its declared size (refused), a non-ZIP with a ZIP signature (400).
Exit 1 on the first failure."""
import hashlib, io, json, os, re, struct, subprocess, sys, tempfile, time, urllib.request, zipfile
import numpy as np
import pydicom

URL, STUDY = sys.argv[1], sys.argv[2]

def req(method, path, data=None, headers=None):
    r = urllib.request.Request(URL + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=600) as f:
            return f.status, f.headers, f.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()

def check(cond, what):
    if not cond:
        print('FAIL:', what)
        sys.exit(1)

def stored_files(level, rid):
    code, _, b = req('GET', f'/{level}/{rid}/instances')
    check(code == 200, f'instances of {rid}: {code}')
    out = {}
    for inst in json.loads(b):
        code, _, f = req('GET', f"/instances/{inst['ID']}/file")
        out[hashlib.sha1(f).hexdigest()] = inst
    return out

NAME = re.compile(r'^[A-Za-z0-9._ -]+/[A-Za-z0-9._ -]+/[A-Za-z0-9._ -]+/[A-Z]{0,2}\d{6,8}\.dcm$')

def check_zip(data, expected, media=False, what=''):
    z = zipfile.ZipFile(io.BytesIO(data))
    check(z.testzip() is None, f'{what}: CRC error')
    names = z.namelist()
    files = [n for n in names if n != 'DICOMDIR']
    check(len(files) == len(expected), f'{what}: {len(files)} entries, expected {len(expected)}')
    got = set()
    for n in files:
        if media:
            check(re.match(r'^IMAGES/IM\d+$', n), f'{what}: media name {n}')
        else:
            check(NAME.match(n), f'{what}: name {n!r}')
        b = z.read(n)
        pydicom.dcmread(io.BytesIO(b))  # every entry parses
        got.add(hashlib.sha1(b).hexdigest())
    check(got == set(expected), f'{what}: entries differ from the stored files')
    if media:
        check('DICOMDIR' in names, f'{what}: no DICOMDIR')
        with tempfile.TemporaryDirectory() as d:
            z.extractall(d)
            r = subprocess.run(['dcmdump', '-q', os.path.join(d, 'DICOMDIR')], capture_output=True, text=True)
            check(r.returncode == 0, f'{what}: dcmdump DICOMDIR: {r.stderr[:300]}')
            uids = set(re.findall(r'\(0004,1511\) UI \[([0-9.]+)\]', r.stdout))
            files = re.findall(r'\(0004,1500\) CS \[([^\]]+)\]', r.stdout)
            want = {pydicom.dcmread(io.BytesIO(z.read(n))).SOPInstanceUID for n in names if n != 'DICOMDIR'}
            check(uids == want and len(files) == len(want), f'{what}: DICOMDIR lists {len(uids)} of {len(want)}')
    return z

# ---- the 2,000-instance study, uploaded as one ZIP ----
paths = sorted(os.path.join(STUDY, f) for f in os.listdir(STUDY))
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
    for p in paths:
        z.write(p, 'dir/' + os.path.basename(p))
    z.writestr('README.txt', 'not DICOM: skipped')
t = time.time()
code, _, b = req('POST', '/instances', buf.getvalue())
check(code == 200, f'ZIP upload: {code} {b[:300]!r}')
answers = json.loads(b)
check(isinstance(answers, list) and len(answers) == len(paths) and all(a['Status'] == 'Success' for a in answers),
      f'ZIP upload answers: {len(answers)}')
print(f'ZIP upload of {len(paths)} instances: {time.time() - t:.1f} s')
study = answers[0]['ParentStudy']
check(all(a['ParentStudy'] == study for a in answers), 'one study')
expected = stored_files('studies', study)
check(len(expected) == len(paths), 'all stored')

code, _, b = req('POST', '/tools/create-archive', json.dumps({'Resources': [study], 'Asynchronous': True}).encode())
check(code == 200, f'create-archive job: {code} {b!r}')
job = json.loads(b)['ID']
for _ in range(1200):
    code, _, b = req('GET', f'/jobs/{job}')
    state = json.loads(b)['State']
    if state in ('Success', 'Failure'):
        break
    time.sleep(0.5)
j = json.loads(b)
check(state == 'Success', f'job {j}')
check(j['Type'] == 'Archive' and j['Content']['InstancesCount'] == len(paths), f'job content {j["Content"]}')
code, h, data = req('GET', f'/jobs/{job}/archive')
check(code == 200 and h['Content-Type'] == 'application/zip', f'/jobs/{job}/archive: {code}')
check(int(j['Content']['ArchiveSize']) == len(data), 'ArchiveSize')
check_zip(data, expected, what='job archive of 2,000 instances')
print('create-archive job of 2,000 instances: ok')

# ---- streamed archives of each level ----
code, _, b = req('GET', f'/studies/{study}')
st = json.loads(b)
series = st['Series'][0]
for level, rid in (('patients', st['ParentPatient']), ('studies', study), ('series', series)):
    exp = stored_files(level, rid) if level != 'studies' else expected
    code, h, data = req('GET', f'/{level}/{rid}/archive')
    check(code == 200 and h['Content-Type'] == 'application/zip', f'{level} archive {code}')
    z = check_zip(data, exp, what=f'{level} archive')
    if level == 'series':
        n = sorted(z.namelist())
        check(n[0].endswith('/CT000000.dcm') and n[-1].endswith('/CT%06d.dcm' % (len(exp) - 1)), f'file names {n[:2]}')
code, _, _ = req('GET', '/studies/nonexistent/archive')
check(code == 404, 'unknown study archive: 404')

# ---- media ----
exp = stored_files('series', series)
code, _, data = req('GET', f'/series/{series}/media')
check(code == 200, f'series media {code}')
check_zip(data, exp, media=True, what='series media')
code, _, data = req('POST', '/tools/create-media', json.dumps({'Resources': [series]}).encode())
check(code == 200, f'create-media {code}')
check_zip(data, exp, media=True, what='create-media')
print('archives of each level, media with DICOMDIR: ok')

# ---- other studies: pydicom files, two resources in one archive, transcoding ----
TF = '/usr/lib/python3/dist-packages/pydicom/data/test_files'
ids = {}
for f in ('MR_small.dcm', 'CT_small.dcm', 'SC_rgb_rle.dcm', 'JPEG2000.dcm'):
    code, _, b = req('POST', '/instances', open(f'{TF}/{f}', 'rb').read())
    check(code == 200, f'upload {f}')
    ids[f] = json.loads(b)
two = [ids['MR_small.dcm']['ParentStudy'], ids['CT_small.dcm']['ParentSeries']]
exp = {}
exp.update(stored_files('studies', two[0]))
exp.update(stored_files('series', two[1]))
code, _, data = req('POST', '/tools/create-archive', json.dumps({'Resources': two, 'Synchronous': True}).encode())
check(code == 200, 'create-archive sync')
check_zip(data, exp, what='two resources')
# a study and one of its own series: each instance once (the retrieve list drops duplicates)
overlap = [ids['MR_small.dcm']['ParentStudy'], ids['MR_small.dcm']['ParentSeries']]
code, _, data = req('POST', '/tools/create-archive', json.dumps({'Resources': overlap, 'Synchronous': True}).encode())
check(code == 200, 'create-archive of a study and its series')
check_zip(data, stored_files('studies', overlap[0]), what='a study and one of its series')

mr = ids['MR_small.dcm']['ID']
orig = pydicom.dcmread(io.BytesIO(req('GET', f'/instances/{mr}/file')[2])).pixel_array
for ts in ('1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.2'):
    code, _, b = req('GET', f'/instances/{mr}/file?transcode={ts}')
    check(code == 200, f'transcode {ts}: {code} {b[:200]!r}')
    d = pydicom.dcmread(io.BytesIO(b))
    check(d.file_meta.TransferSyntaxUID == ts, f'transcoded syntax {d.file_meta.TransferSyntaxUID}')
    check(np.array_equal(d.pixel_array, orig), f'pixels after lossless transcoding to {ts}')
code, _, b = req('GET', f'/instances/{mr}/file?transcode=1.2.840.10008.1.2.4.90')
check(code == 415 and 'not supported' in json.loads(b)['Details'], f'J2K target: {code}')
# a JPEG 2000 source decoded by OpenJPEG, written uncompressed
j2k = ids['JPEG2000.dcm']['ID']
code, _, b = req('GET', f'/instances/{j2k}/file?transcode=1.2.840.10008.1.2.1')
check(code == 200, f'J2K source: {code} {b[:200]!r}')
want = pydicom.dcmread(f'{TF}/JPEG2000.dcm').pixel_array
check(np.array_equal(pydicom.dcmread(io.BytesIO(b)).pixel_array, want), 'J2K source pixels')
code, _, data = req('POST', '/tools/create-archive',
                    json.dumps({'Resources': [ids['SC_rgb_rle.dcm']['ID']], 'Transcode': '1.2.840.10008.1.2.1'}).encode())
z = zipfile.ZipFile(io.BytesIO(data))
d = pydicom.dcmread(io.BytesIO(z.read(z.namelist()[0])))
check(d.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.1' and
      np.array_equal(d.pixel_array, pydicom.dcmread(f'{TF}/SC_rgb_rle.dcm').pixel_array), 'archive Transcode')
code, _, b = req('POST', f"/studies/{ids['MR_small.dcm']['ParentStudy']}/modify",
                 json.dumps({'Replace': {'StudyDescription': 'RLE'}, 'Transcode': '1.2.840.10008.1.2.5'}).encode())
check(code == 200, f'modify with Transcode: {code} {b[:200]!r}')
new_study = json.loads(b)['ID']
for f in stored_files('studies', new_study).values():
    d = pydicom.dcmread(io.BytesIO(req('GET', f"/instances/{f['ID']}/file")[2]))
    check(d.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.5' and np.array_equal(d.pixel_array, orig),
          'modify Transcode: RLE, same pixels')
print('transcoding: ok')

# ---- ZIP bombs and broken ZIPs ----
before = json.loads(req('GET', '/statistics')[2])['CountInstances']
bomb = io.BytesIO()
with zipfile.ZipFile(bomb, 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(paths[0], 'first.dcm')
    z.writestr('zeros.bin', bytes(20 << 20))  # 20 MB of zeros: 20 KB deflated
code, _, b = req('POST', '/instances', bomb.getvalue())
check(code == 413 and 'refused' in json.loads(b)['Details'], f'bomb by declared size: {code} {b[:200]!r}')
# an entry whose central-directory size is smaller than what it inflates to
data = bytearray(bomb.getvalue())
# patch every central directory record of zeros.bin: uncompressed size (offset 24) to 1 MB
pos = 0
while True:
    pos = data.find(b'PK\x01\x02', pos)
    if pos < 0:
        break
    n = struct.unpack('<H', data[pos + 28:pos + 30])[0]
    if data[pos + 46:pos + 46 + n] == b'zeros.bin':
        struct.pack_into('<I', data, pos + 24, 1 << 20)
    pos += 4
pos = data.find(b'PK\x03\x04' , 0)
while pos >= 0:
    n = struct.unpack('<H', data[pos + 26:pos + 28])[0]
    if data[pos + 30:pos + 30 + n] == b'zeros.bin':
        struct.pack_into('<I', data, pos + 22, 1 << 20)
    pos = data.find(b'PK\x03\x04', pos + 4)
code, _, b = req('POST', '/instances', bytes(data))
check(code in (400, 413), f'entry inflating beyond its size: {code} {b[:200]!r}')
code, _, b = req('POST', '/instances', b'PK\x03\x04' + bytes(100))
check(code == 400, f'broken ZIP: {code}')
after = json.loads(req('GET', '/statistics')[2])['CountInstances']
check(after == before, f'nothing stored by refused ZIPs ({before} -> {after})')
print('ZIP bombs refused: ok')
