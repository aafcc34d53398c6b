import sys
src_csv, cls_file, edition, out = sys.argv[1:5]
cls = {}
for l in open(cls_file):
    t, a = l.split(' ', 1); a = a.strip()
    if a.startswith('D:'): a = 'Z'   # PatientName/PatientID: replaced by the caller anyway
    cls[int(t, 16)] = a
rows = []
seen = set()
for line in open(src_csv):
    if line.startswith('#') or line.startswith('tag,'): continue
    parts = line.rstrip('\n').split(',', 3)
    t, a23, code, name = parts
    if ':' in t:
        e0 = t.split(':')[1].split('-')[0]; rep = int(t.split('-')[0] + (e0 if e0 != '0000' else '0010'), 16)
    else:
        rep = int(t, 16)
    seen.add(rep)
    if rep >> 16 == 0 or rep in (0x00080018, 0x0020000D, 0x0020000E):
        a = 'X' if rep >> 16 == 0 else 'U'
    elif rep not in cls:
        continue  # not testable (pydicom has no VR for it): left out
    else:
        a = cls[rep]
    if a == 'K': continue
    act = {'X': 'X-range' if ':' in t else 'X', 'Z': 'Z', 'U': 'U'}[a]
    if act == 'U' and a23 == 'SEQ-REF': act = 'SEQ-REF'
    rows.append('%s,%s,%s,%s' % (t, act, a, name))
for rep, a in sorted(cls.items()):
    if rep in seen or a == 'K': continue
    rows.append('%08X,%s,%s,"(not in the 2023b table)"' % (rep, {'X':'X','Z':'Z','U':'U'}[a], a))
with open(out, 'w') as f:
    f.write('# DICOM PS3.15-%s, Annex E, Table E.1-1, Basic Profile column, as Debian\'s Orthanc 1.10.1 applies it\n' % edition)
    f.write('# ("DicomVersion": "%s"): derived by tests/tools, see dicom/data/README; action: X remove, Z empty, U new UID.\n' % edition)
    f.write('# Approximation: only the tags of the 2023b table (plus a few older ones) were probed; D is applied as Z (as Orthanc).\n')
    f.write('tag,action,standard_code,name\n')
    f.write('\n'.join(rows) + '\n')
print(edition, len(rows))
