/* dcmtk_modify.cpp -- modify and anonymize a parsed dataset in place, clone objects.
 *
 * DESIGN
 * - The basic profile (PS3.15 Table E.1-1) is generated at build time from the CSV of each
 *   edition in dicom/data/ into deid_profile_<edition>.inc (see gen_profile.cmake; 2023b is the
 *   standard's table, 2008/2017c/2021b as Orthanc 1.10.1 applies them: data/derive/README);
 *   here each becomes, once, a hash map tag -> action plus a short list of repeating-group ranges.
 * - One walk over the dataset, recursive through sequences, decides each element, as Orthanc
 *   does: Keep first (a kept sequence is left untouched, not walked), then private removal,
 *   then the profile's action. X removes; Z and D empty the element at top level, and inside a
 *   sequence empty a text element but remove any other (Orthanc's D is an empty value too); U
 *   maps the UID through the spec's UID function. The walk keeps the path of (sequence, item)
 *   it is in, so that Keep paths ("Seq[0].Tag", "Seq[*].Tag") match exactly.
 * - Remove and Replace are applied afterwards, at the path given (a replaced tag the profile
 *   removed comes back with the new value; a path whose sequence or item is missing does
 *   nothing, as in Orthanc). Values are built by dcmtk_value.cpp (private VRs, AT, sequences).
 * - UIDs replaced at top level (and, in an anonymization, the ones the profile maps) are then
 *   rewritten wherever the old value is referenced inside sequences (ReferencedSeriesSequence,
 *   SourceImageSequence, ...). The UIDs a modification renews itself are not followed (Orthanc).
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
#include <map>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dicom/dicom_int.h"

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const DcmValueError &ve) { dcm_int_fail(err, DCM_ERR_ARG, "%s", ve.msg.c_str()); return retval; } \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

namespace {

struct Rule {
    uint16_t g_lo, g_hi, e_lo, e_hi;
    char action;
};

const Rule PROFILE_2023B[] = {
#include "deid_profile_2023b.inc"
};
const Rule PROFILE_2021B[] = {
#include "deid_profile_2021b.inc"
};
const Rule PROFILE_2017C[] = {
#include "deid_profile_2017c.inc"
};
const Rule PROFILE_2008[] = {
#include "deid_profile_2008.inc"
};

struct Profile {
    std::unordered_map<uint32_t, char> single;
    std::vector<Rule> ranges;
    Profile(const Rule *rules, size_t n)
    {
        for (size_t i = 0; i < n; i++) {
            const Rule &r = rules[i];
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

struct Edition {
    const char *name;
    const Rule *rules;
    size_t n;
};

const Edition EDITIONS[] = {
    { "2023b", PROFILE_2023B, sizeof PROFILE_2023B / sizeof PROFILE_2023B[0] },
    { "2021b", PROFILE_2021B, sizeof PROFILE_2021B / sizeof PROFILE_2021B[0] },
    { "2017c", PROFILE_2017C, sizeof PROFILE_2017C / sizeof PROFILE_2017C[0] },
    { "2008", PROFILE_2008, sizeof PROFILE_2008 / sizeof PROFILE_2008[0] },
};
const size_t NEDITIONS = sizeof EDITIONS / sizeof EDITIONS[0];

/* Built once each, thread-safe (C++11 static init). */
const Profile &profile_of(size_t i)
{
    static const Profile *p[NEDITIONS];
    static std::once_flag once[NEDITIONS];
    std::call_once(once[i], [i] { p[i] = new Profile(EDITIONS[i].rules, EDITIONS[i].n); });
    return *p[i];
}

size_t default_edition()
{
    for (size_t i = 0; i < NEDITIONS; i++)
        if (strcmp(EDITIONS[i].name, "2023b") == 0) return i;
    return 0;
}

typedef std::vector<DcmPathStep> Path;

struct Replacement {
    Path path;
    cJSON *value; /* owned */
};

} // namespace

struct DcmModifySpec {
    bool anonymize = false;
    bool keep_private = true;
    size_t edition = 0;
    DcmUidFn uid_fn = nullptr;
    void *uid_ctx = nullptr;
    std::string creator;                              /* PrivateCreator or the default */
    std::vector<uint32_t> keep, remove, remap;        /* top-level tags, sorted */
    std::vector<Path> keep_paths, remove_paths;       /* nested paths */
    std::vector<Replacement> replace;
    bool replace_non_ascii = false;
    ~DcmModifySpec()
    {
        for (auto &r : replace) cJSON_Delete(r.value);
    }
};

namespace {

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

bool is_private(uint32_t tag) { return (tag >> 16) & 1; }

bool is_text_vr(DcmEVR v)
{
    switch (v) {
    case EVR_AE: case EVR_AS: case EVR_CS: case EVR_DA: case EVR_DS: case EVR_DT: case EVR_IS:
    case EVR_LO: case EVR_LT: case EVR_PN: case EVR_SH: case EVR_ST: case EVR_TM: case EVR_UC:
    case EVR_UI: case EVR_UR: case EVR_UT:
        return true;
    default:
        return false;
    }
}

std::string trim_uid(const std::string &v)
{
    size_t a = v.find_first_not_of(std::string(" \0", 2)), z = v.find_last_not_of(std::string(" \0", 2));
    return a == std::string::npos ? std::string() : v.substr(a, z - a + 1);
}

std::string map_uid(const DcmModifySpec &s, const std::string &v)
{
    char buf[65] = "";
    s.uid_fn(s.uid_ctx, v.c_str(), buf);
    buf[64] = '\0';
    return buf;
}

/* Maps every value of a (possibly multi-valued) UID string. */
std::string remap_values(const DcmModifySpec &s, const std::string &in)
{
    std::string out;
    size_t start = 0;
    for (;;) {
        size_t end = in.find('\\', start);
        std::string v = trim_uid(in.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (!out.empty() || start > 0)
            out += '\\';
        if (!v.empty())
            out += map_uid(s, v);
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return out;
}

/* The state of one dcm_modify() call. */
struct Walk {
    const DcmModifySpec &s;
    std::vector<std::pair<uint32_t, long>> stack; /* (sequence tag, item index) down to here */
    std::map<std::string, std::string> uids;      /* top-level UID changes: old -> new */
    explicit Walk(const DcmModifySpec &spec) : s(spec) {}
};

bool path_matches(const Path &p, const std::vector<std::pair<uint32_t, long>> &stack, uint32_t tag)
{
    if (p.size() != stack.size() + 1 || p.back().tag != tag)
        return false;
    for (size_t k = 0; k < stack.size(); k++)
        if (p[k].tag != stack[k].first || (p[k].index != DCM_PATH_ANY && p[k].index != stack[k].second))
            return false;
    return true;
}

bool kept(const Walk &w, uint32_t t)
{
    if (contains(w.s.keep, t))
        return true;
    for (const Path &p : w.s.keep_paths)
        if (path_matches(p, w.stack, t))
            return true;
    return false;
}

/* U: replaces the element's UIDs. An element not stored as UI (e.g. UN) is replaced by a
 * proper UI element. Records top-level changes for the references pass. */
void remap_element(Walk &w, DcmItem *item, DcmElement *e)
{
    const DcmModifySpec &s = w.s;
    if (!s.uid_fn)
        return;
    std::string old;
    if (e->ident() == EVR_UI) {
        OFString v;
        if (e->getOFStringArray(v).bad())
            return;
        old.assign(v.c_str(), v.length());
    } else {
        Uint8 *p = nullptr;
        if (e->getUint8Array(p).good() && p)
            old.assign((const char *)p, e->getLength());
    }
    std::string nv = old.empty() ? std::string() : remap_values(s, old);
    std::string o1 = trim_uid(old);
    /* (a modification's remapped UIDs are not followed into sequences, as in Orthanc) */
    if (s.anonymize && w.stack.empty() && !o1.empty() && o1.find('\\') == std::string::npos)
        w.uids[o1] = nv;
    if (e->ident() == EVR_UI) {
        if (!old.empty())
            e->putString(nv.c_str());
        return;
    }
    DcmTag tag(e->getTag());
    delete item->remove(e);
    DcmTag ui(tag.getGroup(), tag.getElement(), DcmVR(EVR_UI));
    item->putAndInsertString(ui, nv.c_str());
}

void walk(Walk &w, DcmItem *item)
{
    const DcmModifySpec &s = w.s;
    bool top = w.stack.empty();
    ::DcmObject *o = item->nextInContainer(nullptr);
    while (o) {
        ::DcmObject *next = item->nextInContainer(o);
        DcmElement *e = static_cast<DcmElement *>(o);
        uint32_t t = key_of(e);
        if ((top && t == 0x7FE00010u) || kept(w, t)) {
            o = next;
            continue;
        }
        if (!s.keep_private && is_private(t)) {
            delete item->remove(e);
            o = next;
            continue;
        }
        char a = s.anonymize ? profile_of(s.edition).action(t) : 'K';
        if (!s.anonymize && top && contains(s.remap, t))
            a = 'U';
        switch (a) {
        case 'X':
            delete item->remove(e);
            break;
        case 'Z':
        case 'D': /* Orthanc empties D elements too */
            if (top || is_text_vr(e->ident()))
                e->clear();
            else
                delete item->remove(e);
            break;
        case 'U':
            remap_element(w, item, e);
            break;
        default: /* K, S: keep, and walk sequences */
            if (e->ident() == EVR_SQ && (s.anonymize || !s.keep_private || !s.keep_paths.empty())) {
                DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(e);
                for (unsigned long i = 0; i < sq->card(); i++) {
                    w.stack.emplace_back(t, (long)i);
                    walk(w, sq->getItem(i));
                    w.stack.pop_back();
                }
            }
            break;
        }
        o = next;
    }
}

/* Calls fn(item) for every item that path's parent steps lead to (the dataset itself for a
 * one-step path). */
template <class F> void for_targets(DcmItem *item, const Path &p, size_t k, F fn)
{
    if (k + 1 == p.size()) {
        fn(item);
        return;
    }
    DcmSequenceOfItems *sq = nullptr;
    DcmTagKey key((Uint16)(p[k].tag >> 16), (Uint16)p[k].tag);
    if (item->findAndGetSequence(key, sq, OFFalse).bad() || !sq)
        return;
    if (p[k].index == DCM_PATH_ANY) {
        for (unsigned long i = 0; i < sq->card(); i++)
            for_targets(sq->getItem(i), p, k + 1, fn);
    } else if ((unsigned long)p[k].index < sq->card()) {
        for_targets(sq->getItem((unsigned long)p[k].index), p, k + 1, fn);
    }
}

/* The creator for a private tag of a path's last step: the name's own, else the spec's. */
const std::string &creator_of(const DcmModifySpec &s, const DcmPathStep &st)
{
    return st.creator.empty() ? s.creator : st.creator;
}

void replace_at(DcmItem *item, const DcmModifySpec &s, const Replacement &r)
{
    const DcmPathStep &last = r.path.back();
    const std::string &creator = creator_of(s, last);
    /* a private data element without its creator would be unreadable: declare it */
    dcm_int_ensure_creator(item, last.tag, creator);
    DcmElement *e = dcm_int_element_from_json(last.tag, creator, r.value);
    if (item->insert(e, OFTrue).bad()) {
        delete e;
        throw DcmValueError{"cannot insert a replaced element"};
    }
}

/* Rewrites, inside sequences, UI values that name a UID changed at top level. */
void fix_references(Walk &w, DcmItem *item)
{
    for (::DcmObject *o = item->nextInContainer(nullptr); o; o = item->nextInContainer(o)) {
        DcmElement *e = static_cast<DcmElement *>(o);
        uint32_t t = key_of(e);
        if (kept(w, t))
            continue;
        if (e->ident() == EVR_SQ) {
            DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(e);
            for (unsigned long i = 0; i < sq->card(); i++) {
                w.stack.emplace_back(t, (long)i);
                fix_references(w, sq->getItem(i));
                w.stack.pop_back();
            }
        } else if (!w.stack.empty() && e->ident() == EVR_UI) {
            OFString v;
            if (e->getOFStringArray(v).bad())
                continue;
            auto it = w.uids.find(trim_uid(std::string(v.c_str(), v.length())));
            if (it != w.uids.end())
                e->putString(it->second.c_str());
        }
    }
}

std::string top_string(DcmDataset *ds, uint32_t tag)
{
    OFString v;
    if (ds->findAndGetOFStringArray(DcmTagKey((Uint16)(tag >> 16), (Uint16)tag), v, OFFalse).bad())
        return std::string();
    return trim_uid(std::string(v.c_str(), v.length()));
}

bool has_non_ascii(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        for (const char *p = v->valuestring; *p; p++)
            if ((unsigned char)*p >= 0x80) return true;
        return false;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, v)
        if (has_non_ascii(c)) return true;
    return false;
}

/* Parses a path for spec; *top: the tag when the path is one top-level tag, else 0. */
void parse_path(const char *text, Path &p, uint32_t *top)
{
    std::string error;
    if (!dcm_int_path_parse(text, p, error))
        throw DcmValueError{error};
    if (top)
        *top = p.size() == 1 ? p[0].tag : 0;
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
        s->edition = default_edition();
        s->creator = dcm_int_default_creator();
        if (anonymize)
            (void)profile_of(s->edition);
        return s;
    }
    DCM_CATCH(err, nullptr)
}

extern "C" void dcm_modify_spec_free(DcmModifySpec *spec) { delete spec; }

extern "C" bool dcm_modify_spec_edition(DcmError *err, DcmModifySpec *spec, const char *edition)
{
    try {
        for (size_t i = 0; i < NEDITIONS; i++)
            if (edition && strcmp(edition, EDITIONS[i].name) == 0) {
                spec->edition = i;
                (void)profile_of(i);
                return true;
            }
        std::string known;
        for (size_t i = 0; i < NEDITIONS; i++)
            known += std::string(i ? ", " : "") + "\"" + EDITIONS[i].name + "\"";
        return dcm_int_fail(err, DCM_ERR_ARG, "DicomVersion \"%.32s\" is not supported (%s)",
                            edition ? edition : "", known.c_str());
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_modify_spec_private_creator(DcmModifySpec *spec, const char *creator)
{
    try {
        spec->creator = creator ? creator : "";
    } catch (...) {
    }
}

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

extern "C" bool dcm_modify_spec_keep_path(DcmError *err, DcmModifySpec *spec, const char *path, uint32_t *top)
{
    try {
        Path p;
        parse_path(path, p, top);
        if (p.size() == 1)
            insert_sorted(spec->keep, p[0].tag);
        else
            spec->keep_paths.push_back(p);
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_modify_spec_remove_path(DcmError *err, DcmModifySpec *spec, const char *path, uint32_t *top)
{
    try {
        Path p;
        parse_path(path, p, top);
        if (p.size() == 1)
            insert_sorted(spec->remove, p[0].tag);
        else
            spec->remove_paths.push_back(p);
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

static bool add_replace(DcmError *err, DcmModifySpec *spec, Path &p, const cJSON *value)
{
    const DcmPathStep &last = p.back();
    if (last.tag == 0x7FE00010u)
        return dcm_int_fail(err, DCM_ERR_ARG, "PixelData cannot be replaced");
    /* check the value now, so that a bad one is a 400 before any job exists */
    std::unique_ptr<DcmElement> probe(dcm_int_element_from_json(last.tag, creator_of(*spec, last), value));
    cJSON *dup = cJSON_Duplicate(value, 1);
    if (!dup)
        throw std::bad_alloc();
    for (auto &r : spec->replace)
        if (r.path.size() == p.size() && std::equal(p.begin(), p.end(), r.path.begin(),
                [](const DcmPathStep &a, const DcmPathStep &b) { return a.tag == b.tag && a.index == b.index; })) {
            cJSON_Delete(r.value);
            r.value = dup;
            return true;
        }
    spec->replace.push_back(Replacement{p, dup});
    if (has_non_ascii(value))
        spec->replace_non_ascii = true;
    return true;
}

extern "C" bool dcm_modify_spec_replace(DcmError *err, DcmModifySpec *spec, uint32_t tag, const char *value)
{
    try {
        if (!value)
            return dcm_int_fail(err, DCM_ERR_ARG, "no value");
        Path p(1);
        p[0].tag = tag;
        std::unique_ptr<cJSON, void (*)(cJSON *)> v(cJSON_CreateString(value), cJSON_Delete);
        if (!v)
            throw std::bad_alloc();
        return add_replace(err, spec, p, v.get());
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_modify_spec_replace_json(DcmError *err, DcmModifySpec *spec, const char *path,
                                             const cJSON *value, uint32_t *top)
{
    try {
        if (!value)
            return dcm_int_fail(err, DCM_ERR_ARG, "no value");
        Path p;
        parse_path(path, p, top);
        return add_replace(err, spec, p, value);
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_modify_spec_private(DcmModifySpec *spec, bool keep) { spec->keep_private = keep; }

extern "C" bool dcm_modify_spec_touches(const DcmModifySpec *spec, uint32_t tag)
{
    if (contains(spec->keep, tag) || contains(spec->remove, tag))
        return true;
    for (const auto &r : spec->replace)
        if (r.path.size() == 1 && r.path[0].tag == tag)
            return true;
    return false;
}

extern "C" char dcm_profile_action(uint32_t tag)
{
    try {
        return profile_of(default_edition()).action(tag);
    } catch (...) {
        return 'K';
    }
}

extern "C" char dcm_profile_action_ex(const char *edition, uint32_t tag)
{
    try {
        for (size_t i = 0; i < NEDITIONS; i++)
            if (edition && strcmp(edition, EDITIONS[i].name) == 0)
                return profile_of(i).action(tag);
        return '?';
    } catch (...) {
        return '?';
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
        Walk w(*spec);
        /* old values of the top-level UIDs that are replaced explicitly */
        std::vector<std::pair<uint32_t, std::string>> replaced_uids;
        for (const auto &r : spec->replace)
            if (r.path.size() == 1 && cJSON_IsString(r.value) &&
                dcm_int_vr_for(r.path[0].tag, std::string()) == EVR_UI) {
                std::string old = top_string(ds, r.path[0].tag);
                if (!old.empty() && old.find('\\') == std::string::npos)
                    replaced_uids.emplace_back(r.path[0].tag, old);
            }
        walk(w, ds);
        for (uint32_t t : spec->remove)
            if (!contains(spec->keep, t))
                ds->findAndDeleteElement(DcmTagKey((Uint16)(t >> 16), (Uint16)t), OFFalse, OFFalse);
        for (const Path &p : spec->remove_paths)
            for_targets(ds, p, 0, [&p](DcmItem *item) {
                const DcmPathStep &last = p.back();
                item->findAndDeleteElement(DcmTagKey((Uint16)(last.tag >> 16), (Uint16)last.tag), OFFalse, OFFalse);
            });
        for (const auto &r : spec->replace)
            for_targets(ds, r.path, 0, [&r, spec](DcmItem *item) { replace_at(item, *spec, r); });
        for (const auto &u : replaced_uids) {
            std::string nv = top_string(ds, u.first);
            if (nv.empty() || nv == u.second)
                continue;
            w.uids[u.second] = nv;
            /* in an anonymization, nested references were already mapped by the profile */
            if (spec->anonymize && spec->uid_fn)
                w.uids[map_uid(*spec, u.second)] = nv;
        }
        if (!w.uids.empty()) {
            w.stack.clear();
            fix_references(w, ds);
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
            o->pixel_header = src->pixel_header;
        }
        dcm_int_object_refresh(o.get());
        *out = o.release();
        return true;
    }
    DCM_CATCH(err, false)
}

} // namespace mp
