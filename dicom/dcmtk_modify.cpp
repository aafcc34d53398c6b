/* dcmtk_modify.cpp -- modify and anonymize a parsed dataset in place, clone objects, resolve tag
 * names.
 *
 * DESIGN
 * - The basic profile (PS3.15-2023b Table E.1-1) is generated at build time from
 *   dicom/data/deidentification-basic-profile-2023b.csv into deid_profile.inc (see
 *   gen_profile.cmake); here it becomes, once, a hash map tag -> action plus a short list of
 *   repeating-group ranges (curves, overlays).
 * - One walk over the dataset, recursive through sequences, decides each element: Keep first,
 *   then private removal, then the profile's action. Remove and Replace are applied at top level
 *   afterwards (a replaced tag the profile removed comes back with the new value).
 * - New UIDs come from the spec's UID function (the caller's: a keyed hash, so that a job's
 *   instances agree without a shared map, and a resumed job gives the same UIDs again).
 * - The object's lock is held for the whole edit; its index is rebuilt at the end.
 */
#include "dcmtk/config/osconfig.h" /* first, as DCMTK requires */

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcdicent.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcitem.h"
#include "dcmtk/dcmdata/dcvr.h"
#include "dcmtk/dcmdata/dcxfer.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dicom/dicom_int.h"

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

struct DcmModifySpec {
    bool anonymize = false;
    bool keep_private = true;
    DcmUidFn uid_fn = nullptr;
    void *uid_ctx = nullptr;
    std::vector<uint32_t> keep, remove, remap;        /* sorted */
    std::vector<std::pair<uint32_t, std::string>> replace;
    bool replace_non_ascii = false;
};

namespace {

struct Rule {
    uint16_t g_lo, g_hi, e_lo, e_hi;
    char action;
};

const Rule PROFILE[] = {
#include "deid_profile.inc"
};

struct Profile {
    std::unordered_map<uint32_t, char> single;
    std::vector<Rule> ranges;
    Profile()
    {
        for (const Rule &r : PROFILE) {
            if (r.g_lo == r.g_hi && r.e_lo == r.e_hi)
                single[(uint32_t)r.g_lo << 16 | r.e_lo] = r.action;
            else
                ranges.push_back(r);
        }
    }
    char action(uint32_t tag) const
    {
        auto it = single.find(tag);
        if (it != single.end())
            return it->second;
        uint16_t g = (uint16_t)(tag >> 16), e = (uint16_t)tag;
        for (const Rule &r : ranges)
            if (g >= r.g_lo && g <= r.g_hi && e >= r.e_lo && e <= r.e_hi)
                return r.action;
        return 'K';
    }
};

const Profile &profile()
{
    static const Profile p; /* built once, thread-safe (C++11 static init) */
    return p;
}

bool contains(const std::vector<uint32_t> &v, uint32_t t) { return std::binary_search(v.begin(), v.end(), t); }

void insert_sorted(std::vector<uint32_t> &v, uint32_t t)
{
    auto it = std::lower_bound(v.begin(), v.end(), t);
    if (it == v.end() || *it != t)
        v.insert(it, t);
}

uint32_t key_of(const DcmElement *e)
{
    const DcmTagKey &k = e->getTag();
    return (uint32_t)k.getGroup() << 16 | k.getElement();
}

/* Maps every value of a (possibly multi-valued) UID string. */
std::string remap_values(const DcmModifySpec &s, const std::string &in)
{
    std::string out;
    size_t start = 0;
    for (;;) {
        size_t end = in.find('\\', start);
        std::string v = in.substr(start, end == std::string::npos ? std::string::npos : end - start);
        size_t a = v.find_first_not_of(std::string(" \0", 2)), z = v.find_last_not_of(std::string(" \0", 2));
        v = a == std::string::npos ? std::string() : v.substr(a, z - a + 1);
        if (!out.empty() || start > 0)
            out += '\\';
        if (!v.empty()) {
            char buf[65] = "";
            s.uid_fn(s.uid_ctx, v.c_str(), buf);
            buf[64] = '\0';
            out += buf;
        }
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return out;
}

/* U: replaces the element's UIDs. An element not stored as UI (e.g. UN) is replaced by a
 * proper UI element. */
void remap_element(DcmItem *item, DcmElement *e, const DcmModifySpec &s)
{
    if (!s.uid_fn)
        return;
    std::string old;
    if (e->ident() == EVR_UI) {
        OFString v;
        if (e->getOFStringArray(v).bad())
            return;
        old.assign(v.c_str(), v.length());
        if (old.empty())
            return;
        std::string nv = remap_values(s, old);
        e->putString(nv.c_str());
        return;
    }
    Uint8 *p = nullptr;
    if (e->getUint8Array(p).good() && p)
        old.assign((const char *)p, e->getLength());
    std::string nv = old.empty() ? std::string() : remap_values(s, old);
    DcmTag tag(e->getTag());
    delete item->remove(e);
    DcmTag ui(tag.getGroup(), tag.getElement(), DcmVR(EVR_UI));
    item->putAndInsertString(ui, nv.c_str());
}

/* D: a dummy value of the element's VR. */
void dummy_element(DcmElement *e)
{
    const char *v = nullptr;
    switch (e->ident()) {
    case EVR_DA: v = "19000101"; break;
    case EVR_TM: v = "000000"; break;
    case EVR_DT: v = "19000101000000"; break;
    case EVR_AS: v = "000Y"; break;
    case EVR_DS: case EVR_IS: v = "0"; break;
    case EVR_AE: case EVR_CS: case EVR_LO: case EVR_LT: case EVR_PN: case EVR_SH: case EVR_ST:
    case EVR_UT: case EVR_UC:
        v = "ANONYMIZED";
        break;
    default: break; /* binary, numbers, sequences, UR, ...: emptied */
    }
    if (v)
        e->putString(v);
    else
        e->clear();
}

bool is_private(uint32_t tag) { return (tag >> 16) & 1; }

void walk(DcmItem *item, const DcmModifySpec &s, bool top)
{
    ::DcmObject *o = item->nextInContainer(nullptr);
    while (o) {
        ::DcmObject *next = item->nextInContainer(o);
        DcmElement *e = static_cast<DcmElement *>(o);
        uint32_t t = key_of(e);
        if (contains(s.keep, t) || t == 0x7FE00010u) {
            o = next;
            continue;
        }
        if (!s.keep_private && is_private(t)) {
            delete item->remove(e);
            o = next;
            continue;
        }
        char a = s.anonymize ? profile().action(t) : 'K';
        if (!s.anonymize && top && contains(s.remap, t))
            a = 'U';
        switch (a) {
        case 'X':
            delete item->remove(e);
            break;
        case 'Z':
            e->clear();
            break;
        case 'D':
            dummy_element(e);
            break;
        case 'U':
            remap_element(item, e, s);
            break;
        default: /* K, S: keep, and walk sequences */
            if (e->ident() == EVR_SQ && (s.anonymize || !s.keep_private)) {
                DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(e);
                for (unsigned long i = 0; i < sq->card(); i++)
                    walk(sq->getItem(i), s, false);
            }
            break;
        }
        o = next;
    }
}

bool is_text_vr(DcmEVR v)
{
    switch (v) {
    case EVR_AE: case EVR_AS: case EVR_CS: case EVR_DA: case EVR_DS: case EVR_DT: case EVR_IS:
    case EVR_LO: case EVR_LT: case EVR_PN: case EVR_SH: case EVR_ST: case EVR_TM: case EVR_UC:
    case EVR_UI: case EVR_UR: case EVR_UT: case EVR_US: case EVR_UL: case EVR_SS: case EVR_SL:
    case EVR_FL: case EVR_FD: case EVR_AT:
        return true;
    default:
        return false;
    }
}

} // namespace

extern "C" DcmModifySpec *dcm_modify_spec_new(DcmError *err, bool anonymize, DcmUidFn uid_fn, void *ctx)
{
    try {
        DcmModifySpec *s = new DcmModifySpec;
        s->anonymize = anonymize;
        s->keep_private = !anonymize;
        s->uid_fn = uid_fn;
        s->uid_ctx = ctx;
        if (anonymize)
            (void)profile();
        return s;
    }
    DCM_CATCH(err, nullptr)
}

extern "C" void dcm_modify_spec_free(DcmModifySpec *spec) { delete spec; }

extern "C" bool dcm_modify_spec_keep(DcmError *err, DcmModifySpec *spec, uint32_t tag)
{
    try {
        insert_sorted(spec->keep, tag);
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_modify_spec_remove(DcmError *err, DcmModifySpec *spec, uint32_t tag)
{
    try {
        insert_sorted(spec->remove, tag);
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_modify_spec_remap(DcmError *err, DcmModifySpec *spec, uint32_t tag)
{
    try {
        insert_sorted(spec->remap, tag);
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_modify_spec_replace(DcmError *err, DcmModifySpec *spec, uint32_t tag, const char *value)
{
    try {
        if (!value)
            return dcm_int_fail(err, DCM_ERR_ARG, "no value");
        DcmTag t((Uint16)(tag >> 16), (Uint16)tag);
        DcmEVR vr = t.getEVR();
        if (vr == EVR_UNKNOWN || vr == EVR_UN || !is_text_vr(vr))
            return dcm_int_fail(err, DCM_ERR_ARG, "cannot replace tag %04x,%04x (VR %s)", tag >> 16,
                                tag & 0xFFFF, t.getVRName());
        for (auto &r : spec->replace)
            if (r.first == tag) {
                r.second = value;
                return true;
            }
        spec->replace.emplace_back(tag, value);
        for (const char *p = value; *p; p++)
            if ((unsigned char)*p >= 0x80)
                spec->replace_non_ascii = true;
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_modify_spec_private(DcmModifySpec *spec, bool keep) { spec->keep_private = keep; }

extern "C" bool dcm_modify_spec_touches(const DcmModifySpec *spec, uint32_t tag)
{
    if (contains(spec->keep, tag) || contains(spec->remove, tag))
        return true;
    for (const auto &r : spec->replace)
        if (r.first == tag)
            return true;
    return false;
}

extern "C" char dcm_profile_action(uint32_t tag)
{
    try {
        return profile().action(tag);
    } catch (...) {
        return 'K';
    }
}

extern "C" bool dcm_modify(DcmError *err, DcmObject *obj, const DcmModifySpec *spec)
{
    try {
        if (!obj || !spec)
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_modify: bad arguments");
        std::lock_guard<std::mutex> g(obj->lock);
        if (obj->header_only && obj->has_pixel_data)
            return dcm_int_fail(err, DCM_ERR_ARG, "cannot modify an object parsed without its pixel data");
        DcmDataset *ds = obj->ff->getDataset();
        if (spec->replace_non_ascii && obj->charset.find("ISO_IR 192") == std::string::npos) {
            OFCondition c = ds->convertToUTF8();
            if (c.bad())
                return dcm_int_fail(err, DCM_ERR_ARG, "cannot convert the dataset to UTF-8: %s", c.text());
        }
        walk(ds, *spec, true);
        for (uint32_t t : spec->remove)
            if (!contains(spec->keep, t))
                ds->findAndDeleteElement(DcmTagKey((Uint16)(t >> 16), (Uint16)t));
        for (const auto &r : spec->replace) {
            OFCondition c = ds->putAndInsertString(DcmTag((Uint16)(r.first >> 16), (Uint16)r.first),
                                                   r.second.c_str(), OFTrue);
            if (c.bad())
                return dcm_int_fail(err, DCM_ERR_ARG, "cannot set %04x,%04x: %s", r.first >> 16,
                                    r.first & 0xFFFF, c.text());
        }
        dcm_int_object_refresh(obj);
        obj->pixel_offset = 0; /* no longer meaningful: the bytes will change */
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_object_clone(DcmError *err, const DcmObject *cobj, DcmObject **out)
{
    try {
        if (out)
            *out = nullptr;
        if (!cobj || !out)
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_object_clone: bad arguments");
        DcmObject *src = const_cast<DcmObject *>(cobj);
        std::unique_ptr<DcmObject> o(new DcmObject);
        {
            std::lock_guard<std::mutex> g(src->lock);
            o->ff.reset(new DcmFileFormat(*src->ff));
            o->ts = src->ts;
            o->has_meta = src->has_meta;
            o->header_only = src->header_only;
            o->has_pixel_data = src->has_pixel_data;
            o->pixel_offset = src->pixel_offset;
        }
        dcm_int_object_refresh(o.get());
        *out = o.release();
        return true;
    }
    DCM_CATCH(err, false)
}

} // namespace mp
