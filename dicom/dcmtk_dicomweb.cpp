/* dcmtk_dicomweb.cpp -- the DICOM JSON model (PS3.18 Annex F.2) of a parsed dataset: the one
 * writer behind every DICOMweb answer (WADO-RS /metadata, QIDO-RS values) and
 * `Accept: application/dicom+json` on /instances/{id}/tags.
 *
 * DESIGN: the dataset is walked once (top level in tag order, sequences depth first) and
 * printed as compact JSON text into one std::string: no cJSON tree for the big answers
 * (dcm_dicomweb_json() parses the text when a caller wants a tree). Values:
 * - text VRs split on '\\' (LT, ST, UT, UR never), converted to UTF-8 from the file's or the
 *   item's SpecificCharacterSet, padding stripped (leading too, except LT/ST/UT);
 * - PN as {"Alphabetic", "Ideographic", "Phonetic"} by '=' component groups (as pydicom: the
 *   groups present in the value, Alphabetic always);
 * - IS, DS, US, SS, UL, SL, UV, SV, FL, FD as JSON numbers (DS/FL/FD in the shortest text that
 *   reads back as the same double, as Python prints floats; an empty value of a multi-valued
 *   number is null); AT as "GGGGEEEE";
 * - binary VRs (OB, OW, OF, OD, OL, OV, UN) as InlineBinary (base64, little endian) up to the
 *   threshold, BulkDataURI above it (or always for encapsulated pixel data); a header-only
 *   object lists its PixelData as a BulkDataURI, VR OB when encapsulated, else OW when
 *   BitsAllocated > 8, else OB;
 * - a public element stored as UN whose dictionary VR is text is read as that VR (pydicom does
 *   the same); SQ always carries "Value" (possibly []).
 * Group 0002 is never part of the dataset; group lengths are kept as stored.
 */
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcvrat.h"
#include "dicom/dicom_int.h"

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

namespace {

const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64(std::string &out, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out += B64[v >> 18];
        out += B64[(v >> 12) & 63];
        out += B64[(v >> 6) & 63];
        out += B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out += B64[v >> 18];
        out += B64[(v >> 12) & 63];
        out += "==";
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out += B64[v >> 18];
        out += B64[(v >> 12) & 63];
        out += B64[(v >> 6) & 63];
        out += '=';
    }
}

void json_string(std::string &out, const char *s, size_t n)
{
    out += '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20) {
                char b[8];
                snprintf(b, sizeof b, "\\u%04x", c);
                out += b;
            } else {
                out += (char)c;
            }
        }
    }
    out += '"';
}

void json_string(std::string &out, const std::string &s) { json_string(out, s.data(), s.size()); }

/* The shortest decimal text that reads back as d (Python's repr of a float). */
void json_double(std::string &out, double d)
{
    if (!std::isfinite(d)) {
        out += "null";
        return;
    }
    char b[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, d);
        if (strtod(b, nullptr) == d)
            break;
    }
    out += b;
}

/* true if s is a JSON number as written (so a DS's text can be kept as is). */
bool is_json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return false;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return false;
    if (i < n && s[i] == '.') {
        i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return false;
    }
    return i == n;
}

void trim(const char *&p, size_t &n, bool leading)
{
    if (leading)
        while (n > 0 && (p[0] == ' ' || p[0] == '\0')) { p++; n--; }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0')) n--;
}

bool ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

uint32_t key_of(const DcmElement *e)
{
    const DcmTag &t = e->getTag();
    return ((uint32_t)t.getGTag() << 16) | t.getETag();
}

std::string raw_value(DcmElement *e)
{
    char *v = nullptr;
    Uint32 len = 0;
    if (!e || e->getLengthField() == 0 || e->getString(v, len).bad() || !v)
        return std::string();
    return std::string(v, len);
}

void vr_text(DcmEVR evr, char out[3])
{
    const char *name = DcmVR(evr).getVRName();
    if (!name || strlen(name) != 2) name = "UN";
    /* DCMTK's internal VRs ("xs", "ox", "up", ...) have no place in JSON */
    if (!strcmp(name, "xs")) name = "US";
    else if (!strcmp(name, "ox") || !strcmp(name, "px")) name = "OB";
    else if (!strcmp(name, "up")) name = "UL";
    else if (!strcmp(name, "lt")) name = "OW";
    else if (!strcmp(name, "na") || !strcmp(name, "pi")) name = "UN";
    out[0] = name[0];
    out[1] = name[1];
    out[2] = 0;
}

bool text_vr(const char *vr)
{
    static const char *const T[] = { "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                                     "ST", "TM", "UC", "UI", "UR", "UT" };
    for (const char *t : T)
        if (!strcmp(vr, t)) return true;
    return false;
}

bool single_valued(const char *vr) { return !strcmp(vr, "LT") || !strcmp(vr, "ST") || !strcmp(vr, "UT") || !strcmp(vr, "UR"); }

/* Appends the "Value" array of a text element (UTF-8 text, values still joined by '\\').
 * Nothing when the value is empty. */
void text_value(std::string &out, const char *vr, const std::string &utf8)
{
    const char *p = utf8.data();
    size_t n = utf8.size();
    bool keep_leading = !strcmp(vr, "LT") || !strcmp(vr, "ST") || !strcmp(vr, "UT");
    {
        const char *q = p;
        size_t m = n;
        trim(q, m, true);
        if (m == 0) return; /* empty: no Value */
    }
    out += ",\"Value\":[";
    bool is_pn = !strcmp(vr, "PN"), is_ds = !strcmp(vr, "DS"), is_is = !strcmp(vr, "IS");
    bool split = !single_valued(vr);
    size_t start = 0;
    bool first = true;
    for (;;) {
        size_t end = split ? utf8.find('\\', start) : std::string::npos;
        if (end == std::string::npos) end = n;
        const char *c = p + start;
        size_t cn = end - start;
        trim(c, cn, !keep_leading);
        if (!first) out += ',';
        first = false;
        if (is_pn) {
            out += '{';
            static const char *const G[] = { "Alphabetic", "Ideographic", "Phonetic" };
            size_t gs = 0;
            for (int g = 0; g < 3; g++) {
                const void *eq = memchr(c + gs, '=', cn - gs);
                size_t ge = eq ? (size_t)((const char *)eq - c) : cn;
                if (g) out += ',';
                json_string(out, G[g]);
                out += ':';
                json_string(out, c + gs, ge - gs);
                if (!eq) break;
                gs = ge + 1;
            }
            out += '}';
        } else if (is_ds || is_is) {
            if (cn == 0) {
                out += "null";
            } else if (is_json_number(c, cn) && (is_ds || !memchr(c, '.', cn))) {
                out.append(c, cn);
            } else {
                std::string s(c, cn);
                char *endp = nullptr;
                errno = 0;
                double d = strtod(s.c_str(), &endp);
                if (endp == s.c_str() || *endp) out += "null";
                else if (is_is) { char b[32]; snprintf(b, sizeof b, "%.0f", d); out += b; }
                else json_double(out, d);
            }
        } else {
            json_string(out, c, cn);
        }
        if (end >= n) break;
        start = end + 1;
    }
    out += ']';
}

struct Writer {
    const DcmWebJsonOptions *opt;
    std::string out;
    std::string path; /* "/bulk/..." path of the current element */
    std::string scratch;
};

void write_item(Writer &w, DcmItem *item, const std::string &inherited, bool top,
                const std::vector<DcmElement *> *index, DcmObject *obj);

void bulk_uri(Writer &w, const std::string &path)
{
    w.out += ",\"BulkDataURI\":";
    const char *prefix = w.opt->bulk_prefix;
    std::string q;
    if (prefix[0] == '\x01') {
        /* the caller's marker (dicom.h): kept raw; json_string escapes every other control
         * character, so it cannot be confused with anything in a value */
        json_string(q, std::string(prefix + 1) + path);
        w.out += '"';
        w.out += '\x01';
        w.out.append(q, 1, std::string::npos);
    } else {
        json_string(w.out, std::string(prefix) + path);
    }
}

void write_binary(Writer &w, DcmElement *e, const std::string &path)
{
    Uint32 len = e->getLengthField();
    bool encapsulated = len == DCM_UndefinedLength;
    if (len == 0 && !encapsulated) return;
    if (w.opt->bulk_prefix && (encapsulated || (w.opt->bulk_threshold && len > w.opt->bulk_threshold))) {
        bulk_uri(w, path);
        return;
    }
    if (encapsulated) return; /* no URI to give and no plain bytes: vr only */
    std::string bytes(len, '\0');
    if (e->getPartialValue(&bytes[0], 0, len, nullptr, EBO_LittleEndian).bad()) return;
    w.out += ",\"InlineBinary\":\"";
    base64(w.out, reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    w.out += '"';
}

void write_numbers(Writer &w, DcmElement *e, const char *vr)
{
    unsigned long vm = e->getVM();
    if (e->getLengthField() == 0 || vm == 0) return;
    w.out += ",\"Value\":[";
    for (unsigned long i = 0; i < vm; i++) {
        if (i) w.out += ',';
        char b[48];
        b[0] = 0;
        if (!strcmp(vr, "US")) { Uint16 v = 0; e->getUint16(v, i); snprintf(b, sizeof b, "%u", (unsigned)v); }
        else if (!strcmp(vr, "SS")) { Sint16 v = 0; e->getSint16(v, i); snprintf(b, sizeof b, "%d", (int)v); }
        else if (!strcmp(vr, "UL")) { Uint32 v = 0; e->getUint32(v, i); snprintf(b, sizeof b, "%lu", (unsigned long)v); }
        else if (!strcmp(vr, "SL")) { Sint32 v = 0; e->getSint32(v, i); snprintf(b, sizeof b, "%ld", (long)v); }
        else if (!strcmp(vr, "FL")) { Float32 v = 0; e->getFloat32(v, i); json_double(w.out, (double)v); continue; }
        else if (!strcmp(vr, "FD")) { Float64 v = 0; e->getFloat64(v, i); json_double(w.out, v); continue; }
        else {
            OFString s;
            if (e->getOFString(s, i).good()) snprintf(b, sizeof b, "%s", s.c_str());
        }
        w.out += b[0] ? b : "null";
    }
    w.out += ']';
}

/* A public element stored as UN (little endian) whose dictionary VR is AT or a binary number:
 * written with that VR, as pydicom reads it. false when kv is none of those. */
bool write_un_as(Writer &w, DcmElement *e, uint32_t key, const char *kv)
{
    size_t size = !strcmp(kv, "AT") || !strcmp(kv, "UL") || !strcmp(kv, "SL") || !strcmp(kv, "FL") ? 4
                  : !strcmp(kv, "US") || !strcmp(kv, "SS") ? 2 : !strcmp(kv, "FD") ? 8 : 0;
    if (!size) return false;
    Uint32 len = e->getLengthField();
    std::string bytes(len, '\0');
    if (len && e->getPartialValue(&bytes[0], 0, len, nullptr, EBO_LittleEndian).bad()) return false;
    char head[40];
    snprintf(head, sizeof head, "\"%08X\":{\"vr\":\"%s\"", key, kv);
    w.out += head;
    size_t n = len / size;
    if (n) {
        w.out += ",\"Value\":[";
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = reinterpret_cast<const uint8_t *>(bytes.data()) + i * size;
            uint64_t v = 0;
            for (size_t b = 0; b < size; b++) v |= (uint64_t)p[b] << (8 * b);
            char b[48];
            if (i) w.out += ',';
            if (!strcmp(kv, "AT")) snprintf(b, sizeof b, "\"%04X%04X\"", (unsigned)(v & 0xFFFF), (unsigned)(v >> 16));
            else if (!strcmp(kv, "US") || !strcmp(kv, "UL")) snprintf(b, sizeof b, "%llu", (unsigned long long)v);
            else if (!strcmp(kv, "SS")) snprintf(b, sizeof b, "%d", (int)(int16_t)v);
            else if (!strcmp(kv, "SL")) snprintf(b, sizeof b, "%ld", (long)(int32_t)v);
            else if (!strcmp(kv, "FL")) { float f; uint32_t u = (uint32_t)v; memcpy(&f, &u, 4); json_double(w.out, f); continue; }
            else { double d; memcpy(&d, &v, 8); json_double(w.out, d); continue; }
            w.out += b;
        }
        w.out += ']';
    }
    w.out += '}';
    return true;
}

void write_element(Writer &w, DcmElement *e, const std::string &charset, const std::string &path,
                   DcmObject *obj)
{
    uint32_t key = key_of(e);
    char vr[3];
    vr_text(e->getTag().getEVR(), vr);
    DcmElement *el = e;
    bool un_text = false;
    uint16_t grp = (uint16_t)(key >> 16), elm = (uint16_t)(key & 0xFFFF);
    if (!strcmp(vr, "UN") && e->isLeaf() && (grp & 1) && elm >= 0x0010 && elm <= 0x00FF) {
        memcpy(vr, "LO", 3); /* a private creator read without its VR */
        un_text = true;
    } else if (!strcmp(vr, "UN") && e->isLeaf() && !e->getTag().isPrivate()) {
        DcmTag known(e->getTag().getGroup(), e->getTag().getElement());
        char kv[3];
        vr_text(known.getEVR(), kv);
        if (text_vr(kv)) {
            memcpy(vr, kv, 3);
            un_text = true;
        } else if (write_un_as(w, e, key, kv)) {
            return; /* numbers or tags stored as UN: read as the dictionary says */
        }
    }
    if (!e->isLeaf()) memcpy(vr, "SQ", 3);
    char hex[12];
    snprintf(hex, sizeof hex, "\"%08X\":", key);
    w.out += hex;
    w.out += "{\"vr\":\"";
    w.out += vr;
    w.out += '"';
    if (!e->isLeaf()) {
        w.out += ",\"Value\":[";
        DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(e);
        unsigned long n = sq->card();
        for (unsigned long i = 0; i < n; i++) {
            if (i) w.out += ',';
            std::string sub = path + "/" + std::to_string(i);
            std::string saved = w.path;
            w.path = sub;
            write_item(w, sq->getItem(i), charset, false, nullptr, obj);
            w.path = saved;
        }
        w.out += "]}";
        return;
    }
    if (text_vr(vr)) {
        std::string raw;
        if (un_text) {
            Uint8 *b = nullptr;
            if (e->getLengthField() && el->getUint8Array(b).good() && b)
                raw.assign(reinterpret_cast<const char *>(b), e->getLengthField());
        } else {
            raw = raw_value(el);
        }
        if (!strcmp(vr, "UI")) {
            while (!raw.empty() && (raw.back() == '\0' || raw.back() == ' ')) raw.pop_back();
        }
        if (ascii(raw.data(), raw.size())) text_value(w.out, vr, raw);
        else text_value(w.out, vr, dcm_int_to_utf8(charset, raw.data(), raw.size(), !strcmp(vr, "PN")));
    } else if (!strcmp(vr, "AT")) {
        DcmAttributeTag *at = static_cast<DcmAttributeTag *>(e);
        unsigned long vm = e->getLengthField() ? at->getVM() : 0;
        if (vm) {
            w.out += ",\"Value\":[";
            for (unsigned long i = 0; i < vm; i++) {
                DcmTagKey k;
                if (at->getTagVal(k, i).bad()) break;
                char b[16];
                snprintf(b, sizeof b, "%s\"%04X%04X\"", i ? "," : "", k.getGroup(), k.getElement());
                w.out += b;
            }
            w.out += ']';
        }
    } else if (!strcmp(vr, "US") || !strcmp(vr, "SS") || !strcmp(vr, "UL") || !strcmp(vr, "SL") ||
               !strcmp(vr, "FL") || !strcmp(vr, "FD") || !strcmp(vr, "UV") || !strcmp(vr, "SV")) {
        write_numbers(w, e, vr);
    } else {
        write_binary(w, e, path);
    }
    w.out += '}';
}

void write_item(Writer &w, DcmItem *item, const std::string &inherited, bool top,
                const std::vector<DcmElement *> *index, DcmObject *obj)
{
    std::string charset = inherited;
    DcmElement *cs = nullptr;
    if (!top && item->findAndGetElement(DCM_SpecificCharacterSet, cs, OFFalse).good() && cs)
        charset = raw_value(cs);
    std::vector<DcmElement *> elems;
    if (!index) {
        for (::DcmObject *o = item->nextInContainer(nullptr); o; o = item->nextInContainer(o))
            elems.push_back(static_cast<DcmElement *>(o));
        index = &elems;
    }
    w.out += '{';
    bool first = true;
    bool pixel_seen = false;
    for (DcmElement *e : *index) {
        uint32_t key = key_of(e);
        if ((key >> 16) == 0x0002) continue;
        if (!first) w.out += ',';
        first = false;
        char hex[10];
        snprintf(hex, sizeof hex, "%08x", key); /* Orthanc's spelling of bulk paths */
        std::string path = w.path + "/" + hex;
        write_element(w, e, charset, path, obj);
        if (key == 0x7FE00010) pixel_seen = true;
    }
    if (top && obj->header_only && obj->has_pixel_data && !pixel_seen && w.opt->pixel_data) {
        /* the pixels stayed in the file: list them by reference */
        const char *vr = "OB";
        if (!DcmXfer(obj->ts.c_str()).isEncapsulated()) {
            Uint16 bits = 0;
            if (item->findAndGetUint16(DCM_BitsAllocated, bits).good() && bits > 8) vr = "OW";
        }
        if (!first) w.out += ',';
        first = false;
        w.out += "\"7FE00010\":{\"vr\":\"";
        w.out += vr;
        w.out += '"';
        if (w.opt->bulk_prefix) bulk_uri(w, w.path + "/7fe00010");
        w.out += '}';
    }
    w.out += '}';
}

} // namespace

extern "C" bool dcm_dicomweb_json_text(DcmError *err, const DcmObject *cobj,
                                       const DcmWebJsonOptions *opt, char **out, size_t *len)
{
    try {
        if (out) *out = nullptr;
        if (len) *len = 0;
        if (!cobj || !opt || !out)
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_dicomweb_json_text: bad arguments");
        DcmObject *obj = const_cast<DcmObject *>(cobj);
        Writer w;
        w.opt = opt;
        w.path = "";
        {
            std::lock_guard<std::mutex> g(obj->lock);
            write_item(w, obj->ff->getDataset(), obj->charset, true, &obj->index, obj);
        }
        char *s = static_cast<char *>(malloc(w.out.size() + 1));
        if (!s) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
        memcpy(s, w.out.data(), w.out.size() + 1);
        *out = s;
        if (len) *len = w.out.size();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" cJSON *dcm_dicomweb_json(DcmError *err, const DcmObject *obj, const DcmWebJsonOptions *opt)
{
    char *text = nullptr;
    if (!dcm_dicomweb_json_text(err, obj, opt, &text, nullptr)) return nullptr;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    return j;
}

extern "C" void dcm_dicomweb_vr(uint32_t tag, char vr[3])
{
    try {
        DcmTag t((Uint16)(tag >> 16), (Uint16)(tag & 0xFFFF));
        vr_text(t.getEVR(), vr);
    } catch (...) {
        memcpy(vr, "UN", 3);
    }
}

extern "C" char *dcm_dicomweb_value_text(uint32_t tag, const char *vr_in, const char *value)
{
    try {
        char vr[3];
        if (vr_in && strlen(vr_in) == 2) {
            memcpy(vr, vr_in, 3);
        } else {
            DcmTag t((Uint16)(tag >> 16), (Uint16)(tag & 0xFFFF));
            vr_text(t.getEVR(), vr);
        }
        std::string out = "{\"vr\":\"";
        out += vr;
        out += '"';
        if (value && *value) {
            if (text_vr(vr)) {
                text_value(out, vr, value);
            } else if (!strcmp(vr, "AT") || !strcmp(vr, "SQ") || !strcmp(vr, "OB") || !strcmp(vr, "OW") ||
                       !strcmp(vr, "UN") || !strcmp(vr, "OF") || !strcmp(vr, "OD") || !strcmp(vr, "OL")) {
                /* values given as text never carry these: vr only */
            } else {
                /* numbers given as text ('\\'-joined) */
                out += ",\"Value\":[";
                std::string v(value);
                size_t start = 0;
                bool first = true;
                for (;;) {
                    size_t end = v.find('\\', start);
                    if (end == std::string::npos) end = v.size();
                    std::string c = v.substr(start, end - start);
                    const char *p = c.c_str();
                    size_t n = c.size();
                    trim(p, n, true);
                    if (!first) out += ',';
                    first = false;
                    std::string s(p, n);
                    char *endp = nullptr;
                    double d = strtod(s.c_str(), &endp);
                    if (s.empty() || *endp) out += "null";
                    else if (is_json_number(s.data(), s.size())) out += s;
                    else json_double(out, d);
                    if (end >= v.size()) break;
                    start = end + 1;
                }
                out += ']';
            }
        }
        out += '}';
        char *s = static_cast<char *>(malloc(out.size() + 1));
        if (s) memcpy(s, out.c_str(), out.size() + 1);
        return s;
    } catch (...) {
        return nullptr;
    }
}

} // namespace mp
