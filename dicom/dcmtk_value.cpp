/* dcmtk_value.cpp -- tags by name (public and private), tag paths, and DICOM elements built
 * from Orthanc-style JSON values: what modify/anonymize (dcmtk_modify.cpp) and create-dicom
 * (dcmtk_content.cpp) share.
 *
 * DESIGN
 * - Private names. DCMTK's dictionary keys a private entry on the element's low byte plus its
 *   creator (so that a file placing the creator in any block 10..FF still finds its VR), hence
 *   DcmTag::findTagFromName() answers gggg,00ee for a private name: the creator slot. Names
 *   declared in the "Dictionary" option are therefore also kept here, name -> (gggg,eeee as
 *   declared, creator), and looked up first. The map is filled before threads start.
 * - VR of an element to write: the public dictionary; for a private data element (odd group,
 *   element >= 0x1000) the private dictionary under the creator in force (the PrivateCreator
 *   option, else DefaultPrivateCreator, else the creator of the name used), else UN; a
 *   creator slot (gggg,0010-00FF) is LO.
 * - Values: text and numbers through DCMTK's putString (numbers of binary VRs are parsed);
 *   AT as "gggg,eeee" (or a name), several joined by '\\'; UN and other binary VRs take the
 *   bytes of the string, padded with NUL to an even length (as Orthanc writes them); an array
 *   of objects is a sequence, each object an item whose keys are resolved the same way.
 * - Paths: "Tag", "Seq[i].Tag", "Seq[*].Tag", nested to any depth; each tag a name, a private
 *   name, "gggg,eeee", "ggggeeee" or "(gggg,eeee)".
 */
#include "dcmtk/config/osconfig.h" /* first, as DCMTK requires */

#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcdicent.h"
#include "dcmtk/dcmdata/dcitem.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcvrat.h"
#include "dcmtk/ofstd/ofstd.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>

#include "dicom/dicom_int.h"

namespace mp {

namespace {

struct PrivName {
    uint32_t tag;
    std::string creator;
};

std::unordered_map<std::string, PrivName> &priv_names()
{
    static std::unordered_map<std::string, PrivName> m;
    return m;
}

int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_hex(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(s[i]);
        if (h < 0) return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

bool is_text_vr(DcmEVR v)
{
    switch (v) {
    case EVR_AE: case EVR_AS: case EVR_CS: case EVR_DA: case EVR_DS: case EVR_DT: case EVR_IS:
    case EVR_LO: case EVR_LT: case EVR_PN: case EVR_SH: case EVR_ST: case EVR_TM: case EVR_UC:
    case EVR_UI: case EVR_UR: case EVR_UT: case EVR_US: case EVR_UL: case EVR_SS: case EVR_SL:
    case EVR_FL: case EVR_FD: case EVR_SV: case EVR_UV:
        return true;
    default:
        return false;
    }
}

std::string g_default_creator; /* DefaultPrivateCreator, set before threads start */

} // namespace

extern "C" void dcm_set_default_private_creator(const char *creator)
{
    try {
        g_default_creator = creator ? creator : "";
    } catch (...) {
    }
}

const std::string &dcm_int_default_creator() { return g_default_creator; }

void dcm_int_private_name_add(const char *name, uint32_t tag, const char *creator)
{
    if (!name || !*name || !creator || !*creator) return;
    priv_names()[name] = PrivName{tag, creator};
}

bool dcm_int_tag_resolve(const char *text, uint32_t *tag, std::string *creator)
{
    if (!text || !tag) return false;
    if (creator) creator->clear();
    size_t n = strlen(text);
    if (n == 11 && text[0] == '(' && text[10] == ')') {
        text++;
        n = 9;
    }
    uint32_t g, e;
    if (n == 9 && (text[4] == ',' || text[4] == '-') && parse_hex(text, 4, &g) && parse_hex(text + 5, 4, &e)) {
        *tag = g << 16 | e;
        return true;
    }
    if (n == 8 && parse_hex(text, 8, &g)) {
        *tag = g;
        return true;
    }
    std::string s(text, n);
    auto it = priv_names().find(s);
    if (it != priv_names().end()) {
        *tag = it->second.tag;
        if (creator) *creator = it->second.creator;
        return true;
    }
    DcmTag t;
    if (DcmTag::findTagFromName(s.c_str(), t).good()) {
        *tag = (uint32_t)t.getGTag() << 16 | t.getETag();
        if (creator && t.getPrivateCreator()) *creator = t.getPrivateCreator();
        return true;
    }
    return false;
}

DcmEVR dcm_int_vr_for(uint32_t tag, const std::string &creator)
{
    Uint16 g = (Uint16)(tag >> 16), e = (Uint16)tag;
    if ((g & 1) && g > 8 && e >= 0x0010 && e <= 0x00FF)
        return EVR_LO;
    if ((g & 1) && g > 8 && e >= 0x1000) {
        if (creator.empty())
            return EVR_UN;
        const DcmDataDictionary &dict = dcmDataDict.rdlock();
        const DcmDictEntry *entry = dict.findEntry(DcmTagKey(g, e), creator.c_str());
        DcmEVR v = entry ? entry->getEVR() : EVR_UN;
        dcmDataDict.rdunlock();
        return v == EVR_UNKNOWN || v == EVR_UNKNOWN2B ? EVR_UN : v;
    }
    DcmTag t(g, e);
    DcmEVR v = t.getEVR();
    if (v == EVR_UNKNOWN || v == EVR_UNKNOWN2B) return EVR_UN;
    /* a dictionary entry with several VRs (xs, ox, lt, ...): one of them */
    if (v == EVR_xs) return EVR_US;
    if (v == EVR_ox || v == EVR_px) return EVR_OW;
    if (v == EVR_lt) return EVR_OW;
    return v;
}

/* Builds one element; throws DcmValueError on a bad value. */
DcmElement *dcm_int_element_from_json(uint32_t tag, const std::string &creator, const cJSON *v,
                                      bool data_uri)
{
    char label[16];
    snprintf(label, sizeof label, "%04x,%04x", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
    DcmEVR vr = dcm_int_vr_for(tag, creator);
    DcmTag t((Uint16)(tag >> 16), (Uint16)tag, DcmVR(vr));
    if (cJSON_IsArray(v)) {
        if (vr != EVR_SQ && vr != EVR_UN)
            throw DcmValueError{std::string("not a sequence: ") + label};
        t.setVR(DcmVR(EVR_SQ));
        std::unique_ptr<DcmSequenceOfItems> sq(new DcmSequenceOfItems(t));
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (!cJSON_IsObject(it))
                throw DcmValueError{std::string("sequence items must be objects: ") + label};
            DcmItem *child = new DcmItem;
            sq->append(child);
            dcm_int_fill_item(child, it, creator, data_uri);
        }
        return sq.release();
    }
    std::string text;
    static const char k_binary_uri[] = "data:application/octet-stream;base64,";
    if (cJSON_IsString(v) && data_uri && !strncmp(v->valuestring, k_binary_uri, sizeof k_binary_uri - 1)) {
        const char *b64 = v->valuestring + sizeof k_binary_uri - 1;
        if (strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != strlen(b64))
            throw DcmValueError{std::string("bad base64 in the data URI of ") + label};
        unsigned char *bytes = nullptr;
        size_t n = OFStandard::decodeBase64(OFString(b64), bytes);
        text.assign(reinterpret_cast<const char *>(bytes), n);
        delete[] bytes;
    } else if (cJSON_IsString(v))
        text = v->valuestring;
    else if (cJSON_IsNumber(v)) {
        char b[64];
        snprintf(b, sizeof b, "%.17g", v->valuedouble);
        text = b;
    } else if (cJSON_IsNull(v))
        text = "";
    else
        throw DcmValueError{std::string("bad value for ") + label};
    if (vr == EVR_SQ) {
        if (!text.empty())
            throw DcmValueError{std::string("a sequence needs an array of objects: ") + label};
        return new DcmSequenceOfItems(t);
    }
    DcmElement *el = nullptr;
    if (DcmItem::newDicomElementWithVR(el, t).bad() || !el)
        throw DcmValueError{std::string("cannot create element ") + label};
    std::unique_ptr<DcmElement> hold(el);
    OFCondition c = EC_Normal;
    if (vr == EVR_AT) {
        size_t start = 0;
        unsigned long n = 0;
        while (!text.empty()) {
            size_t end = text.find('\\', start);
            std::string one = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
            uint32_t at;
            if (!dcm_int_tag_resolve(one.c_str(), &at, nullptr))
                throw DcmValueError{"bad AT value \"" + one + "\" for " + label};
            c = static_cast<DcmAttributeTag *>(el)->putTagVal(DcmTagKey((Uint16)(at >> 16), (Uint16)at), n++);
            if (c.bad()) break;
            if (end == std::string::npos) break;
            start = end + 1;
        }
    } else if (is_text_vr(vr)) {
        c = el->putString(text.c_str(), (Uint32)text.size());
    } else {
        std::vector<Uint8> bytes(text.begin(), text.end());
        if (bytes.size() & 1) bytes.push_back(0);
        c = el->putUint8Array(bytes.data(), (unsigned long)bytes.size());
    }
    if (c.bad())
        throw DcmValueError{std::string("cannot set ") + label + ": " + c.text()};
    return hold.release();
}

void dcm_int_ensure_creator(DcmItem *item, uint32_t tag, const std::string &creator)
{
    uint16_t g = (uint16_t)(tag >> 16), el = (uint16_t)tag;
    if (!(g & 1) || g <= 8 || el < 0x1000 || creator.empty())
        return;
    DcmTagKey slot(g, (Uint16)(el >> 8));
    if (item->tagExists(slot, OFFalse))
        return;
    OFCondition c = item->putAndInsertString(DcmTag(slot, DcmVR(EVR_LO)), creator.c_str(), OFTrue);
    if (c.bad())
        throw DcmValueError{std::string("cannot insert the private creator: ") + c.text()};
}

void dcm_int_fill_item(DcmItem *item, const cJSON *tags, const std::string &creator, bool data_uri)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, tags)
    {
        uint32_t tag;
        std::string named;
        if (!dcm_int_tag_resolve(v->string, &tag, &named))
            throw DcmValueError{std::string("unknown DICOM tag: ") + v->string};
        if (tag == 0x7FE00010)
            throw DcmValueError{"PixelData cannot be given as a tag"};
        const std::string &c = named.empty() ? creator : named;
        dcm_int_ensure_creator(item, tag, c);
        DcmElement *el = dcm_int_element_from_json(tag, c, v, data_uri);
        if (item->insert(el, OFTrue).bad()) {
            delete el;
            throw DcmValueError{std::string("cannot insert ") + v->string};
        }
    }
}

bool dcm_int_path_parse(const char *text, std::vector<DcmPathStep> &out, std::string &error)
{
    out.clear();
    if (!text || !*text) {
        error = "empty tag path";
        return false;
    }
    std::string s(text);
    size_t start = 0;
    for (;;) {
        size_t dot = s.find('.', start);
        std::string seg = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        DcmPathStep st;
        st.index = DCM_PATH_NO_INDEX;
        size_t br = seg.find('[');
        if (br != std::string::npos) {
            if (seg.back() != ']' || br + 2 > seg.size() - 1) {
                error = "bad tag path \"" + s + "\"";
                return false;
            }
            std::string idx = seg.substr(br + 1, seg.size() - br - 2);
            seg = seg.substr(0, br);
            if (idx == "*") {
                st.index = DCM_PATH_ANY;
            } else {
                char *end = nullptr;
                long n = strtol(idx.c_str(), &end, 10);
                if (idx.empty() || *end || n < 0 || idx[0] == '-' || idx[0] == '+') {
                    error = "bad index in tag path \"" + s + "\"";
                    return false;
                }
                st.index = n;
            }
        }
        if (!dcm_int_tag_resolve(seg.c_str(), &st.tag, &st.creator)) {
            error = "unknown DICOM tag \"" + seg + "\"";
            return false;
        }
        bool last = dot == std::string::npos;
        if (last != (st.index == DCM_PATH_NO_INDEX)) {
            error = last ? "a tag path must end with a tag, not an item: \"" + s + "\""
                         : "a sequence in a tag path needs an item index: \"" + s + "\"";
            return false;
        }
        out.push_back(st);
        if (last) break;
        start = dot + 1;
    }
    return true;
}

} // namespace mp
