#!/usr/bin/python3
"""QIDO-RS checks for 78_dicomweb_qido_wado.sh, on the studies it uploads (pydicom's CT_small,
MR_small(_RLE), rtplan, JPEG2000, SC_rgb_rle_2frame, charset_files/chr*).

usage: check_qido.py URL
       check_qido.py --parts HEADERS_FILE BODY_FILE   (writes each part of a multipart/related
                                                        body next to BODY_FILE, prints paths)
"""
import email
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

CT = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
CT_SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
MR = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
NM = "1.3.6.1.4.1.5962.1.2.8.20040826185059.5457"
RT = "1.22.333.4.555555.6.7777777777777777777777777777"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def parts(headers_file, body_file):
    ctype = None
    for line in open(headers_file, encoding="latin-1"):
        if line.lower().startswith("content-type:"):
            ctype = line.split(":", 1)[1].strip()
    body = open(body_file, "rb").read()
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    assert msg.is_multipart(), ctype
    for i, p in enumerate(msg.get_payload()):
        path = f"{body_file}.part{i}"
        with open(path, "wb") as f:
            f.write(p.get_payload(decode=True))
        print(path)


def main(url):
    def qido(path, **args):
        q = urllib.parse.urlencode(args, safe="*,\\")
        full = f"{url}/dicom-web/{path}" + (f"?{q}" if q else "")
        try:
            with urllib.request.urlopen(full) as r:
                assert r.headers["Content-Type"].startswith("application/dicom+json"), r.headers["Content-Type"]
                return 200, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def uids(answers, tag="0020000D"):
        return sorted(a[tag]["Value"][0] for a in answers)

    def expect(cond, what):
        if not cond:
            print(f"FAIL: {what}")
            sys.exit(1)

    code, studies = qido("studies")
    expect(code == 200 and len(studies) == 7, f"7 studies, got {code} {len(studies) if isinstance(studies, list) else studies}")
    ct = next(s for s in studies if s["0020000D"]["Value"][0] == CT)
    expect(ct["00081190"]["Value"][0] == f"{url}/dicom-web/studies/{CT}".replace("127.0.0.1", "127.0.0.1"), "RetrieveURL")
    expect(ct["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}, "SpecificCharacterSet")
    expect(ct["00201206"] == {"vr": "IS", "Value": [1]} and ct["00201208"] == {"vr": "IS", "Value": [1]}, "counts")
    expect(ct["00080061"] == {"vr": "CS", "Value": ["CT"]}, "ModalitiesInStudy")
    expect(ct["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}, "PN")
    expect(list(ct) == sorted(ct), "keys in tag order")
    expect(all(v["vr"] for v in ct.values()), "vr everywhere")

    # single value, wildcard, case rules, fuzzy
    expect(uids(qido("studies", PatientID="1CT1")[1]) == [CT], "single value")
    expect(uids(qido("studies", PatientName="CompressedSamples*")[1]) == sorted([CT, MR, NM]), "wildcard")
    expect(uids(qido("studies", PatientName="Compressed?amples^CT1")[1]) == [CT], "? wildcard")
    expect(qido("studies", PatientName="compressedsamples*")[1] == [], "QidoCaseSensitive (default true)")
    expect(uids(qido("studies", PatientName="compressedsamples", fuzzymatching="true")[1]) == sorted([CT, MR, NM]),
           "fuzzymatching: prefix, case-insensitive")
    expect(len(qido("studies", PatientName="tarou", fuzzymatching="true")[1]) == 1, "fuzzymatching: given name")
    # UID lists (backslash or comma), ranges
    expect(uids(qido("studies", StudyInstanceUID=f"{CT}\\{MR}")[1]) == sorted([CT, MR]), "UID list (\\)")
    expect(uids(qido("studies", StudyInstanceUID=f"{CT},{RT}")[1]) == sorted([CT, RT]), "UID list (,)")
    expect(uids(qido("studies", StudyDate="20040101-20041231")[1]) == sorted([CT, MR, NM]), "date range")
    expect(uids(qido("studies", StudyDate="-20031231")[1]) == [RT], "open date range")
    expect(uids(qido("studies", **{"00080020": "20040119"})[1]) == [CT], "tag given as hex")
    # computed
    expect(uids(qido("studies", ModalitiesInStudy="MR")[1]) == [MR], "ModalitiesInStudy match")
    expect(uids(qido("studies", ModalitiesInStudy="CT\\NM")[1]) == sorted([CT, NM]), "ModalitiesInStudy list")
    # includefield
    code, a = qido("studies", PatientID="1CT1", includefield="InstitutionName")
    expect("00080080" in a[0], "includefield by name")
    code, a = qido("studies", PatientID="1CT1", includefield="00081030,00080080")
    expect("00080080" in a[0], "includefield by tag, comma list")
    code, a = qido("studies", PatientID="1CT1", includefield="all")
    expect("00080062" in a[0] and "00080080" in a[0], "includefield=all")
    code, a = qido("instances", PatientID="1CT1", includefield="00180050")
    expect(a[0].get("00180050", {}).get("Value") == [5], f"includefield outside the index (SliceThickness): {a[0].get('00180050')}")
    # paging
    all_uids = uids(qido("studies")[1])
    expect(len(qido("studies", limit="2")[1]) == 2, "limit")
    page = qido("studies", limit="2", offset="6")[1]
    expect(len(page) == 1, "limit+offset")
    got = []
    for off in range(0, 7, 3):
        got += uids(qido("studies", limit="3", offset=str(off))[1])
    expect(sorted(got) == all_uids, "pages cover every study once")
    expect(qido("studies", offset="7")[1] == [], "offset past the end")
    # the other routes
    code, s = qido(f"studies/{CT}/series")
    expect(code == 200 and len(s) == 1 and s[0]["0020000E"]["Value"][0] == CT_SERIES, "study's series")
    expect(s[0]["00201209"] == {"vr": "IS", "Value": [1]} and s[0]["00080060"]["Value"] == ["CT"], "series attributes")
    expect(s[0]["00081190"]["Value"][0].endswith(f"/studies/{CT}/series/{CT_SERIES}"), "series RetrieveURL")
    expect(len(qido("series")[1]) == 7, "all series")
    expect(uids(qido("series", Modality="MR")[1]) == [MR], "series by Modality")
    code, i = qido(f"studies/{CT}/instances")
    expect(len(i) == 1 and i[0]["00080016"]["Value"] == [CT_IMAGE_STORAGE], "study's instances, SOPClassUID")
    expect(i[0]["00081190"]["Value"][0].count("/") >= 8 and "/instances/" in i[0]["00081190"]["Value"][0], "instance RetrieveURL")
    expect(len(qido(f"studies/{CT}/series/{CT_SERIES}/instances")[1]) == 1, "series' instances")
    expect(len(qido("instances")[1]) == 7, "all instances")
    expect(uids(qido("instances", SOPClassUID=CT_IMAGE_STORAGE)[1]) == [CT], "instances by SOPClassUID")
    expect(qido("studies/1.2.3.4/series")[1] == [], "unknown study: empty")
    # character sets
    code, a = qido("studies", PatientID="H31EXAMPLE")
    expect(a[0]["00100010"]["Value"] == [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎",
                                          "Phonetic": "やまだ^たろう"}], f"ISO 2022 PN: {a[0]['00100010']}")
    code, a = qido("studies", PatientName="Buc^J*")
    expect(len(a) == 1 and a[0]["00100010"]["Value"][0]["Alphabetic"] == "Buc^Jérôme", "Latin-1")
    # bad requests
    expect(qido("studies", Nonsense="1")[0] == 400, "unknown attribute: 400")
    expect(qido("studies", limit="x")[0] == 400, "bad limit: 400")
    expect(qido("studies", includefield="Nonsense")[0] == 400, "bad includefield: 400")
    expect(qido("studies", StudyInstanceUID="1.2*")[0] in (200,), "a wildcard UID pattern is a query")
    print("PASS: QIDO-RS")


if __name__ == "__main__":
    if sys.argv[1] == "--parts":
        parts(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
