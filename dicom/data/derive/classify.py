import sys, pydicom
src = pydicom.dcmread(sys.argv[1])
out = pydicom.dcmread(sys.argv[2])
res = {}
for e in src:
    t = int(e.tag)
    if t not in out:
        a = 'X'
    else:
        o = out[t]
        if o.VR == 'SQ':
            a = 'Z' if len(o.value) == 0 else ('K' if len(o.value) == len(e.value) else '?')
        elif o.value in (None, b'', '') or (isinstance(o.value, (list,)) and not o.value):
            a = 'Z'
        elif o.value == e.value:
            a = 'K'
        elif e.VR == 'UI':
            a = 'U'
        else:
            a = 'D:' + repr(o.value)[:30]
    res[t] = a
for t in sorted(res):
    print("%08X %s" % (t, res[t]))
