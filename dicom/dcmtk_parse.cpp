/* dcmtk_parse.cpp -- parse a buffer, read tags, Orthanc's /tags JSON, write a buffer.
 *
 * DESIGN
 * - Parsing reads the caller's buffer through a DcmInputBufferStream (no copy of the input;
 *   DCMTK copies element values into its own tree). DcmFileFormat handles the preamble, a
 *   missing "DICM", a missing meta header (transfer syntax guessed by DCMTK: implicit/explicit,
 *   little/big endian) and deflate.
 * - DCM_PARSE_HEADER_ONLY (the ingest hot path) calls readUntilTag(..., PixelData): DCMTK stops
 *   right after PixelData's element header, so the stream position is the offset of its value
 *   (Orthanc's PixelDataOffset). We then re-read that header from the buffer ourselves and check
 *   the pixels are all there without copying them: a defined length must fit in the buffer, an
 *   undefined length (encapsulated) is walked item header by item header up to the sequence
 *   delimiter. Deflated files cannot be checked in place: they are parsed fully and PixelData
 *   is dropped afterwards (pixel offset 0: there is no such offset in the file).
 * - Truncation: DCMTK reports a value running past the end of a buffer stream as an error; we
 *   also require the stream to be exhausted after a full read, and a non-empty dataset.
 * - Reading is serialized per object (DcmObject::lock): DCMTK changes internal state while
 *   reading (list cursors, string modes, byte order), so the "read-only" functions are only
 *   safe concurrently because of the lock. Top-level lookups use a sorted index built once.
 * - Text goes to UTF-8 through our own converter on top of glibc iconv, not DCMTK's
 *   DcmSpecificCharacterSet: on this platform DCMTK's iconv back end refuses the ISO 2022
 *   multi-byte sets (e.g. "ISO 2022 IR 87"), which Orthanc supports. The converter tracks G0/G1
 *   across escape sequences (PS3.5 6.1.2.5) and hands runs of bytes to iconv (JIS X 0208/0212
 *   as EUC-JP, KS X 1001 as EUC-KR, GB 2312 as EUC-CN). Pure ASCII values (the vast majority)
 *   are copied without any conversion; Latin-1 (the default without SpecificCharacterSet) is
 *   converted inline. Invalid bytes become U+FFFD.
 * - DCMTK's own log goes to the callback set by dcm_set_log_fn: dcmdata's parse chatter at
 *   debug level (a refused file is reported once, by the caller, from DcmError), other DCMTK
 *   modules at their level. Nothing is printed on stderr by DCMTK itself.
 */
#include "dcmtk/config/osconfig.h" /* first, as DCMTK requires */

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcdicent.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcvrat.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/logger.h"
#include "dcmtk/oflog/oflog.h"
#include "dcmtk/oflog/spi/logevent.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iconv.h>
#include <vector>
#include <zlib.h>
#include <strings.h>
#include <new>

#include "dicom/dicom_int.h"

namespace mp {

/* ---- logging and errors ------------------------------------------------------------------ */

static std::atomic<DcmLogFn> g_log_fn{nullptr};

static void vlog(int level, const char *fmt, va_list ap)
{
    DcmLogFn fn = g_log_fn.load(std::memory_order_relaxed);
    if (!fn)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fn(level, msg);
}

void dcm_int_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

bool dcm_int_fail(DcmError *err, int code, const char *fmt, ...)
{
    char msg[sizeof(err->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err) {
        err->code = code;
        memcpy(err->message, msg, sizeof msg);
    } else {
        dcm_int_log(DCM_LOG_DEBUG, "dicom: %s", msg);
    }
    return false;
}

/* The common tail of every exported function. */
#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

/* Forwards DCMTK's oflog events to our callback. */
namespace {
class CallbackAppender : public dcmtk::log4cplus::Appender {
public:
    CallbackAppender() {}
    ~CallbackAppender() override { destructorImpl(); }
    void close() override {}

protected:
    void append(const dcmtk::log4cplus::spi::InternalLoggingEvent &ev) override
    {
        int ll = ev.getLogLevel();
        int level;
        if (strncmp(ev.getLoggerName().c_str(), "dcmtk.dcmdata", 13) == 0)
            level = DCM_LOG_DEBUG; /* parse chatter; refusals are reported via DcmError */
        else if (ll >= dcmtk::log4cplus::ERROR_LOG_LEVEL)
            level = DCM_LOG_ERROR;
        else if (ll >= dcmtk::log4cplus::WARN_LOG_LEVEL)
            level = DCM_LOG_WARNING;
        else if (ll >= dcmtk::log4cplus::INFO_LOG_LEVEL)
            level = DCM_LOG_INFO;
        else
            level = DCM_LOG_DEBUG;
        dcm_int_log(level, "dcmtk: %s", ev.getMessage().c_str());
    }
};
} // namespace

/* ---- character sets ---------------------------------------------------------------------- */

namespace {

enum Dec : uint8_t { D_ASCII, D_LATIN1, D_KATAKANA, D_ICONV };

struct Cs {
    Dec dec;
    const char *name; /* iconv name for D_ICONV */
    uint8_t width;    /* G0 only: 1 = single byte, 2 = JIS X 0208, 3 = JIS X 0212 */
};

const Cs CS_ASCII = {D_ASCII, nullptr, 1};
const Cs CS_LATIN1 = {D_LATIN1, nullptr, 1};
const Cs CS_KATAKANA = {D_KATAKANA, nullptr, 1};
const Cs CS_JIS0208 = {D_ICONV, "EUC-JP", 2};
const Cs CS_JIS0212 = {D_ICONV, "EUC-JP", 3};
const Cs CS_KSC = {D_ICONV, "EUC-KR", 1};
const Cs CS_GB2312 = {D_ICONV, "GB2312", 1};

bool same_dec(const Cs &a, const Cs &b)
{
    return a.dec == b.dec && (a.dec != D_ICONV || strcmp(a.name, b.name) == 0);
}

struct Term {
    const char *number; /* "100" for ISO_IR 100 / ISO 2022 IR 100 */
    Cs g0, g1;
};

const Term TERMS[] = {
    {"6", CS_ASCII, CS_LATIN1}, /* G1 unused; stray high bytes read as Latin-1 */
    {"100", CS_ASCII, CS_LATIN1},
    {"101", CS_ASCII, {D_ICONV, "ISO-8859-2", 1}},
    {"109", CS_ASCII, {D_ICONV, "ISO-8859-3", 1}},
    {"110", CS_ASCII, {D_ICONV, "ISO-8859-4", 1}},
    {"144", CS_ASCII, {D_ICONV, "ISO-8859-5", 1}},
    {"127", CS_ASCII, {D_ICONV, "ISO-8859-6", 1}},
    {"126", CS_ASCII, {D_ICONV, "ISO-8859-7", 1}},
    {"138", CS_ASCII, {D_ICONV, "ISO-8859-8", 1}},
    {"148", CS_ASCII, {D_ICONV, "ISO-8859-9", 1}},
    {"203", CS_ASCII, {D_ICONV, "ISO-8859-15", 1}},
    {"166", CS_ASCII, {D_ICONV, "TIS-620", 1}},
    {"13", CS_ASCII, CS_KATAKANA},
    {"87", CS_JIS0208, CS_LATIN1},
    {"159", CS_JIS0212, CS_LATIN1},
    {"149", CS_ASCII, CS_KSC},
    {"58", CS_ASCII, CS_GB2312},
};

struct Esc {
    const char *seq; /* bytes after ESC */
    int g;           /* 0 or 1 */
    Cs cs;
};

const Esc ESCAPES[] = {
    {"(B", 0, CS_ASCII},     {"(J", 0, CS_ASCII}, /* JIS X 0201 romaji ~ ASCII */
    {"$B", 0, CS_JIS0208},   {"$@", 0, CS_JIS0208},   {"$(D", 0, CS_JIS0212},
    {")I", 1, CS_KATAKANA},  {"$)C", 1, CS_KSC},      {"$)A", 1, CS_GB2312},
    {"-A", 1, CS_LATIN1},    {"-B", 1, {D_ICONV, "ISO-8859-2", 1}},
    {"-C", 1, {D_ICONV, "ISO-8859-3", 1}},  {"-D", 1, {D_ICONV, "ISO-8859-4", 1}},
    {"-L", 1, {D_ICONV, "ISO-8859-5", 1}},  {"-G", 1, {D_ICONV, "ISO-8859-6", 1}},
    {"-F", 1, {D_ICONV, "ISO-8859-7", 1}},  {"-H", 1, {D_ICONV, "ISO-8859-8", 1}},
    {"-M", 1, {D_ICONV, "ISO-8859-9", 1}},  {"-T", 1, {D_ICONV, "TIS-620", 1}},
    {"-b", 1, {D_ICONV, "ISO-8859-15", 1}},
};

const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

bool is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == 0x1B)
            return false;
    return true;
}

void put_cp(std::string &out, unsigned cp)
{
    if (cp < 0x80) {
        out += (char)cp;
    } else if (cp < 0x800) {
        out += (char)(0xC0 | (cp >> 6));
        out += (char)(0x80 | (cp & 0x3F));
    } else {
        out += (char)(0xE0 | (cp >> 12));
        out += (char)(0x80 | ((cp >> 6) & 0x3F));
        out += (char)(0x80 | (cp & 0x3F));
    }
}

void append_latin1(std::string &out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_cp(out, (unsigned char)s[i]);
}

/* Copies valid UTF-8, replacing invalid sequences by U+FFFD. */
void append_utf8(std::string &out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                   : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len == 3) { /* overlongs and surrogates */
            ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
        } else if (ok && len == 4) {
            ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
        }
        if (ok) {
            out.append(s + i, len);
            i += len;
        } else {
            out += REPLACEMENT;
            i++;
        }
    }
}

/* The character set of files without SpecificCharacterSet: Orthanc's DefaultEncoding
 * (dcm_set_default_encoding), changeable at run time (PUT /tools/default-encoding): an index
 * into k_encodings, read once per Utf8Conv. */
const struct { const char *name, *charset; } k_encodings[] = {
    {"Ascii", "ISO_IR 6"},           {"Utf8", "ISO_IR 192"},
    {"Latin1", "ISO_IR 100"},        {"Latin2", "ISO_IR 101"},
    {"Latin3", "ISO_IR 109"},        {"Latin4", "ISO_IR 110"},
    {"Latin5", "ISO_IR 148"},        {"Cyrillic", "ISO_IR 144"},
    {"Windows1251", "WINDOWS-1251"}, {"Arabic", "ISO_IR 127"},
    {"Greek", "ISO_IR 126"},         {"Hebrew", "ISO_IR 138"},
    {"Thai", "ISO_IR 166"},          {"Japanese", "ISO_IR 13"},
    {"Chinese", "GB18030"},          {"JapaneseKanji", "ISO 2022 IR 87"},
    {"Korean", "ISO 2022 IR 149"},   {"SimplifiedChinese", "ISO 2022 IR 58"},
};
std::atomic<int> g_default_encoding{2}; /* Latin1 */

/* One SpecificCharacterSet, ready to convert values. Opens iconv descriptors lazily and
 * closes them when destroyed; not shared between threads. */
class Utf8Conv {
public:
    explicit Utf8Conv(const std::string &charset) { setup(charset); }
    ~Utf8Conv()
    {
        for (auto &h : handles_)
            if (h.second != (iconv_t)-1)
                iconv_close(h.second);
    }
    Utf8Conv(const Utf8Conv &) = delete;
    Utf8Conv &operator=(const Utf8Conv &) = delete;

    void convert(const char *s, size_t n, bool is_pn, std::string &out)
    {
        if (is_ascii(s, n)) {
            out.append(s, n);
            return;
        }
        if (whole_utf8_) {
            append_utf8(out, s, n);
            return;
        }
        if (whole_) {
            append_iconv(whole_, s, n, out);
            return;
        }
        Cs g0 = init_g0_, g1 = init_g1_;
        std::string run;
        Cs run_cs = CS_ASCII;
        auto push = [&](const Cs &cs, const char *b, size_t k) {
            if (!run.empty() && !same_dec(cs, run_cs)) {
                flush(run_cs, run, out);
                run.clear();
            }
            run_cs = cs;
            run.append(b, k);
        };
        size_t i = 0;
        while (i < n) {
            unsigned char b = (unsigned char)s[i];
            if (b == 0x1B && iso2022_) {
                const Esc *hit = nullptr;
                for (const Esc &e : ESCAPES) {
                    size_t l = strlen(e.seq);
                    if (i + 1 + l <= n && memcmp(s + i + 1, e.seq, l) == 0) {
                        hit = &e;
                        break;
                    }
                }
                if (hit) {
                    (hit->g == 0 ? g0 : g1) = hit->cs;
                    i += 1 + strlen(hit->seq);
                } else { /* unknown escape: mark it, go on */
                    flush(run_cs, run, out);
                    run.clear();
                    out += REPLACEMENT;
                    i++;
                }
                continue;
            }
            if (b < 0x80) {
                if (g0.width >= 2 && b >= 0x21 && b <= 0x7E) {
                    unsigned char b2 = i + 1 < n ? (unsigned char)s[i + 1] : 0;
                    if (b2 >= 0x21 && b2 <= 0x7E) {
                        char euc[3];
                        size_t k = 0;
                        if (g0.width == 3)
                            euc[k++] = (char)0x8F;
                        euc[k++] = (char)(b | 0x80);
                        euc[k++] = (char)(b2 | 0x80);
                        push(g0, euc, k);
                        i += 2;
                    } else {
                        flush(run_cs, run, out);
                        run.clear();
                        out += REPLACEMENT;
                        i++;
                    }
                    continue;
                }
                push(CS_ASCII, s + i, 1);
                i++;
                if (iso2022_ && (b == '\r' || b == '\n' || b == '\f' || b == '\t' || b == '\\' ||
                                 (is_pn && (b == '^' || b == '=')))) {
                    g0 = init_g0_;
                    g1 = init_g1_;
                }
            } else {
                push(g1, s + i, 1);
                i++;
            }
        }
        if (!run.empty())
            flush(run_cs, run, out);
    }

private:
    void setup(const std::string &given)
    {
        /* no SpecificCharacterSet: the configured DefaultEncoding (dcm_set_default_encoding) */
        const std::string charset = given.find_first_not_of(" \0", 0, 2) == std::string::npos
                                        ? std::string(k_encodings[g_default_encoding.load()].charset)
                                        : given;
        /* split on '\\', trim spaces */
        std::vector<std::string> terms;
        size_t start = 0;
        for (;;) {
            size_t end = charset.find('\\', start);
            std::string t = charset.substr(start, end == std::string::npos ? std::string::npos
                                                                            : end - start);
            size_t a = t.find_first_not_of(" \0", 0, 2), z = t.find_last_not_of(" \0", std::string::npos, 2);
            terms.push_back(a == std::string::npos ? std::string() : t.substr(a, z - a + 1));
            if (end == std::string::npos)
                break;
            start = end + 1;
        }
        const std::string &first = terms[0];
        iso2022_ = terms.size() > 1 || first.compare(0, 9, "ISO 2022 ") == 0;
        if (!iso2022_) {
            if (first == "ISO_IR 192") {
                whole_utf8_ = true;
                return;
            }
            if (first == "WINDOWS-1251") { /* only as a DefaultEncoding ("Windows1251") */
                whole_ = "CP1251";
                return;
            }
            if (first == "GB18030" || first == "GBK") {
                whole_ = first == "GB18030" ? "GB18030" : "GBK";
                return;
            }
        }
        std::string number;
        if (first.compare(0, 7, "ISO_IR ") == 0)
            number = first.substr(7);
        else if (first.compare(0, 12, "ISO 2022 IR ") == 0)
            number = first.substr(12);
        init_g0_ = CS_ASCII;
        init_g1_ = CS_LATIN1; /* no or unknown SpecificCharacterSet: Latin-1 like Orthanc */
        for (const Term &t : TERMS) {
            if (number == t.number) {
                init_g0_ = t.g0;
                init_g1_ = t.g1;
                break;
            }
        }
    }

    iconv_t handle(const char *name)
    {
        for (auto &h : handles_)
            if (strcmp(h.first, name) == 0)
                return h.second;
        iconv_t cd = iconv_open("UTF-8", name);
        if (cd == (iconv_t)-1)
            dcm_int_log(DCM_LOG_WARNING, "dicom: iconv cannot convert from %s", name);
        handles_.emplace_back(name, cd);
        return cd;
    }

    void append_iconv(const char *name, const char *s, size_t n, std::string &out)
    {
        iconv_t cd = handle(name);
        if (cd == (iconv_t)-1) {
            append_latin1(out, s, n);
            return;
        }
        iconv(cd, nullptr, nullptr, nullptr, nullptr);
        char *in = const_cast<char *>(s);
        size_t inleft = n;
        char tmp[512];
        while (inleft > 0) {
            char *o = tmp;
            size_t oleft = sizeof tmp;
            size_t r = iconv(cd, &in, &inleft, &o, &oleft);
            out.append(tmp, (size_t)(o - tmp));
            if (r == (size_t)-1 && errno != E2BIG) { /* EILSEQ / EINVAL: skip one byte */
                out += REPLACEMENT;
                in++;
                inleft--;
                iconv(cd, nullptr, nullptr, nullptr, nullptr);
            }
        }
    }

    void flush(const Cs &cs, const std::string &run, std::string &out)
    {
        switch (cs.dec) {
        case D_ASCII: out += run; break;
        case D_LATIN1: append_latin1(out, run.data(), run.size()); break;
        case D_KATAKANA:
            for (unsigned char c : run) {
                if (c >= 0xA1 && c <= 0xDF)
                    put_cp(out, 0xFF61 + (c - 0xA1));
                else
                    out += REPLACEMENT;
            }
            break;
        case D_ICONV: append_iconv(cs.name, run.data(), run.size(), out); break;
        }
    }

    bool iso2022_ = false;
    bool whole_utf8_ = false;
    const char *whole_ = nullptr; /* iconv name for non-ISO-2022 multi-byte sets */
    Cs init_g0_ = CS_ASCII, init_g1_ = CS_LATIN1;
    std::vector<std::pair<const char *, iconv_t>> handles_;
};

/* A converter made on first need: most values are ASCII and never need one. */
class LazyConv {
public:
    explicit LazyConv(const std::string &charset) : charset_(charset) {}
    void convert(const char *s, size_t n, bool is_pn, std::string &out)
    {
        if (is_ascii(s, n)) {
            out.append(s, n);
            return;
        }
        if (!conv_)
            conv_.reset(new Utf8Conv(charset_));
        conv_->convert(s, n, is_pn, out);
    }

private:
    const std::string &charset_;
    std::unique_ptr<Utf8Conv> conv_;
};

} // namespace

std::string dcm_int_to_utf8(const std::string &charset, const char *s, size_t n, bool is_pn)
{
    std::string out;
    Utf8Conv(charset).convert(s, n, is_pn, out);
    return out;
}

/* ---- element access ---------------------------------------------------------------------- */

namespace {

enum Leaf { LEAF_TEXT, LEAF_NULL, LEAF_BINARY, LEAF_SEQUENCE };

void strip(const char *&p, size_t &n)
{
    while (n > 0 && (p[0] == ' ' || p[0] == '\0')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
}

uint32_t key_of(const DcmElement *e)
{
    const DcmTag &t = e->getTag();
    return ((uint32_t)t.getGTag() << 16) | t.getETag();
}

/* The value of a leaf as UTF-8 text (stripped, values joined with '\\'), or its kind. */
Leaf leaf_text(DcmElement *e, LazyConv &conv, std::string &out)
{
    out.clear();
    if (!e->isLeaf())
        return LEAF_SEQUENCE;
    DcmEVR vr = e->getTag().getEVR();
    if (e->getTag().getVR().isaString()) {
        char *v = nullptr;
        Uint32 len = 0;
        if (e->getLengthField() == 0 || e->getString(v, len).bad() || !v)
            return LEAF_TEXT;
        const char *p = v;
        size_t n = len;
        strip(p, n);
        conv.convert(p, n, vr == EVR_PN, out);
        return LEAF_TEXT;
    }
    switch (vr) {
    case EVR_AT: {
        if (e->getLengthField() == 0)
            return LEAF_NULL;
        DcmAttributeTag *at = static_cast<DcmAttributeTag *>(e);
        unsigned long vm = at->getVM();
        for (unsigned long i = 0; i < vm; i++) {
            DcmTagKey k;
            if (at->getTagVal(k, i).bad())
                break;
            char buf[16];
            snprintf(buf, sizeof buf, "%s%04x,%04x", i ? "\\" : "", k.getGroup(), k.getElement());
            out += buf;
        }
        return LEAF_TEXT;
    }
    case EVR_US: case EVR_SS: case EVR_UL: case EVR_SL: case EVR_FL: case EVR_FD:
    case EVR_UV: case EVR_SV: case EVR_xs: case EVR_up: {
        if (e->getLengthField() == 0)
            return LEAF_NULL;
        OFString s;
        if (e->getOFStringArray(s).bad())
            return LEAF_NULL;
        out.assign(s.c_str(), s.length());
        return LEAF_TEXT;
    }
    case EVR_UN: {
        /* A public text element stored as UN (explicit VR files written by tools that did
         * not know the tag): read it as its dictionary VR says, like pydicom does. */
        DcmTag known(e->getTag().getGroup(), e->getTag().getElement());
        Uint8 *b = nullptr;
        if (e->getTag().isPrivate() || !known.getVR().isaString() || known.getEVR() == EVR_UN)
            return LEAF_BINARY;
        if (e->getLengthField() == 0 || e->getUint8Array(b).bad() || !b)
            return LEAF_TEXT;
        const char *p = reinterpret_cast<const char *>(b);
        size_t n = e->getLengthField();
        strip(p, n);
        conv.convert(p, n, known.getEVR() == EVR_PN, out);
        return LEAF_TEXT;
    }
    default:
        return LEAF_BINARY;
    }
}

DcmElement *find_top(const DcmObject *obj, uint32_t tag)
{
    auto it = std::lower_bound(obj->index.begin(), obj->index.end(), tag,
                               [](const DcmElement *e, uint32_t t) { return key_of(e) < t; });
    return it != obj->index.end() && key_of(*it) == tag ? *it : nullptr;
}

std::string raw_string(DcmElement *e)
{
    char *v = nullptr;
    Uint32 len = 0;
    if (!e || e->getLengthField() == 0 || e->getString(v, len).bad() || !v)
        return std::string();
    return std::string(v, len);
}

} // namespace

void dcm_int_object_refresh(DcmObject *obj)
{
    DcmDataset *ds = obj->ff->getDataset();
    obj->index.clear();
    size_t bytes = 0;
    for (::DcmObject *o = ds->nextInContainer(nullptr); o; o = ds->nextInContainer(o)) {
        DcmElement *e = static_cast<DcmElement *>(o);
        obj->index.push_back(e);
        bytes += 64 + (e->getLengthField() == DCM_UndefinedLength ? 0 : e->getLengthField());
    }
    auto by_tag = [](const DcmElement *a, const DcmElement *b) { return key_of(a) < key_of(b); };
    if (!std::is_sorted(obj->index.begin(), obj->index.end(), by_tag)) /* DCMTK keeps them sorted */
        std::stable_sort(obj->index.begin(), obj->index.end(), by_tag);
    obj->charset = raw_string(find_top(obj, 0x00080005));
    obj->memory = sizeof(DcmObject) + obj->index.capacity() * sizeof(void *) + bytes;
}

DcmObject *dcm_int_object_from(std::unique_ptr<DcmFileFormat> ff)
{
    std::unique_ptr<DcmObject> obj(new DcmObject);
    obj->ff = std::move(ff);
    obj->has_meta = true;
    E_TransferSyntax x = obj->ff->getDataset()->getCurrentXfer();
    if (x == EXS_Unknown)
        x = EXS_LittleEndianExplicit;
    obj->ts = DcmXfer(x).getXferID();
    dcm_int_object_refresh(obj.get());
    obj->has_pixel_data = obj->ff->getDataset()->tagExists(DCM_PixelData);
    return obj.release();
}

/* ---- parsing ----------------------------------------------------------------------------- */

namespace {

uint16_t rd16(const uint8_t *p, bool big) { return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]); }
uint32_t rd32(const uint8_t *p, bool big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

const uint32_t UNDEFINED = 0xFFFFFFFFu;

/* Framing check: walks the element headers of the buffer (no values read, nothing copied) to
 * prove every element, item and fragment lies inside it, and finds top-level PixelData. It runs
 * BEFORE DCMTK reads the buffer: DCMTK allocates an element's declared length before finding
 * the buffer too short, so a 400-byte upload declaring a 3.6 GB value would cost a 3.6 GB
 * allocation; the walk refuses it first. It also catches what DCMTK forgives (a partial header
 * at the very end, an encapsulated PixelData cut before its delimiter) and checks what a
 * header-only parse skips. */
class Framing {
public:
    Framing(const uint8_t *b, size_t len) : b_(b), len_(len) {}

    /* Offset of the dataset: after the preamble and the group 0002 elements, if any; *ts gets
     * the meta header's TransferSyntaxUID ("" without one). */
    bool dataset_start(DcmError *err, size_t *start, std::string *ts) const
    {
        size_t p = len_ >= 132 && memcmp(b_ + 128, "DICM", 4) == 0 ? 132 : 0;
        ts->clear();
        while (len_ - p >= 8 && rd16(b_ + p, false) == 0x0002) {
            Hdr h;
            bool explicit_vr = isupper(b_[p + 4]) && isupper(b_[p + 5]);
            if (!header(p, {false, explicit_vr}, h) || h.len == UNDEFINED || h.len > len_ - p - h.size)
                return dcm_int_fail(err, DCM_ERR_FORMAT, "truncated or bad meta header at offset %zu", p);
            if (h.e == 0x0010) {
                ts->assign(reinterpret_cast<const char *>(b_ + p + h.size), h.len);
                while (!ts->empty() && (ts->back() == '\0' || ts->back() == ' '))
                    ts->pop_back();
            }
            p += h.size + h.len;
        }
        *start = p;
        return true;
    }

    /* Walks the top-level dataset from start to the end of the buffer. */
    bool dataset(DcmError *err, size_t start, E_TransferSyntax x, uint64_t *pixel_offset)
    {
        DcmXfer xf(x);
        err_ = err;
        pixel_offset_ = 0;
        size_t p = start;
        if (!walk(p, len_, {xf.isBigEndian(), xf.isExplicitVR()}, 0, true, false))
            return false;
        *pixel_offset = pixel_offset_;
        pixel_header = pixel_header_;
        return true;
    }

    uint32_t pixel_header = 0; /* size of PixelData's element header, after dataset() */

private:
    struct Enc {
        bool big, explicit_vr;
    };
    struct Hdr {
        uint16_t g, e;
        uint32_t len;
        size_t size; /* header bytes */
        bool un;     /* explicit VR UN: an undefined length holds implicit little endian */
        bool sq;     /* explicit VR SQ */
        bool fixed;  /* explicit VR that DCMTK reads only with a defined length (OD, OF, OL, OV,
                        SV, UV, UC, UR, UT): an undefined one fails its full read */
    };

    bool header(size_t p, Enc enc, Hdr &h) const
    {
        if (len_ - p < 8)
            return false;
        h.g = rd16(b_ + p, enc.big);
        h.e = rd16(b_ + p + 2, enc.big);
        h.un = h.sq = h.fixed = false;
        if (h.g == 0xFFFE || !enc.explicit_vr) {
            h.len = rd32(b_ + p + 4, enc.big);
            h.size = 8;
            return true;
        }
        unsigned v0 = b_[p + 4], v1 = b_[p + 5];
        bool short_len;
        switch (v0 << 8 | v1) { /* VRs with a 2-byte length (PS3.5 7.1.2) */
        case 'A' << 8 | 'E': case 'A' << 8 | 'S': case 'A' << 8 | 'T': case 'C' << 8 | 'S':
        case 'D' << 8 | 'A': case 'D' << 8 | 'S': case 'D' << 8 | 'T': case 'F' << 8 | 'L':
        case 'F' << 8 | 'D': case 'I' << 8 | 'S': case 'L' << 8 | 'O': case 'L' << 8 | 'T':
        case 'P' << 8 | 'N': case 'S' << 8 | 'H': case 'S' << 8 | 'L': case 'S' << 8 | 'S':
        case 'S' << 8 | 'T': case 'T' << 8 | 'M': case 'U' << 8 | 'I': case 'U' << 8 | 'L':
        case 'U' << 8 | 'S':
            short_len = true;
            break;
        default:
            short_len = false;
        }
        if (short_len) {
            h.len = rd16(b_ + p + 6, enc.big);
            h.size = 8;
            return true;
        }
        if (len_ - p < 12)
            return false;
        h.un = v0 == 'U' && v1 == 'N';
        h.sq = v0 == 'S' && v1 == 'Q';
        switch (v0 << 8 | v1) {
        case 'O' << 8 | 'D': case 'O' << 8 | 'F': case 'O' << 8 | 'L': case 'O' << 8 | 'V':
        case 'S' << 8 | 'V': case 'U' << 8 | 'V': case 'U' << 8 | 'C': case 'U' << 8 | 'R':
        case 'U' << 8 | 'T':
            h.fixed = true;
            break;
        default:
            break;
        }
        h.len = rd32(b_ + p + 8, enc.big);
        h.size = 12;
        return true;
    }

    bool fail_at(const char *what, size_t p) const
    {
        return dcm_int_fail(err_, DCM_ERR_FORMAT, "truncated or malformed DICOM: %s at offset %zu", what, p);
    }

    /* Is this defined-length value a sequence DCMTK will parse into items? Explicit VR: "SQ".
     * Implicit VR: what the data dictionary says, as DCMTK decides. */
    static bool is_sequence(const Hdr &h, Enc enc)
    {
        if (enc.explicit_vr)
            return h.sq;
        if (h.len < 8 || (h.g & 1))
            return false;
        return DcmTag(DcmTagKey(h.g, h.e)).getEVR() == EVR_SQ;
    }

    /* Elements from p: up to end (top level, a defined-length item), or up to the item
     * delimiter (delimited: an undefined-length item; end still bounds it). */
    bool walk(size_t &p, size_t end, Enc enc, int depth, bool top, bool delimited)
    {
        if (depth > 64)
            return fail_at("nesting too deep", p);
        for (;;) {
            if (!delimited && p == end)
                return true;
            Hdr h;
            if (!header(p, enc, h) || h.size > end - p)
                return fail_at("element header cut", p);
            if (h.g == 0xFFFE) {
                p += h.size;
                if (delimited && h.e == 0xE00D)
                    return true;
                if (top) /* a stray delimiter at top level: DCMTK skips it, so do we */
                    continue;
                return fail_at("unexpected delimiter", p - h.size);
            }
            bool pixels = top && h.g == 0x7FE0 && h.e == 0x0010;
            p += h.size;
            if (pixels) {
                pixel_offset_ = p;
                pixel_header_ = h.size;
            }
            if (h.len == UNDEFINED) {
                if (h.fixed) /* the file would be stored and never read back */
                    return fail_at("undefined length on a VR that cannot have one", p - h.size);
                Enc inner = h.un || pixels ? Enc{false, false} : enc;
                if (!items(p, end, inner, depth + 1, false, pixels))
                    return false;
            } else {
                if (h.len > end - p)
                    return fail_at(pixels ? "PixelData value cut" : "element value cut", p - h.size);
                size_t q = p;
                if (!pixels && is_sequence(h, enc) && !items(q, p + h.len, enc, depth + 1, true, false))
                    return false;
                p += h.len;
            }
        }
    }

    /* Items of a sequence up to end (defined length) or its delimiter. Fragments (opaque: the
     * items of encapsulated PixelData) are bytes; other items are walked as datasets. */
    bool items(size_t &p, size_t end, Enc enc, int depth, bool defined, bool opaque)
    {
        for (;;) {
            if (defined && p == end)
                return true;
            if (end - p < 8)
                return fail_at(defined ? "item cut" : "sequence cut before its delimiter", p);
            uint16_t g = rd16(b_ + p, enc.big), e = rd16(b_ + p + 2, enc.big);
            uint32_t l = rd32(b_ + p + 4, enc.big);
            p += 8;
            if (g == 0xFFFE && e == 0xE0DD)
                return true;
            if (g != 0xFFFE || e != 0xE000)
                return fail_at("item expected", p - 8);
            if (l == UNDEFINED) {
                if (opaque)
                    return fail_at("fragment of undefined length", p - 8);
                if (!walk(p, end, enc, depth + 1, false, true))
                    return false;
            } else {
                if (l > end - p)
                    return fail_at("item cut", p - 8);
                size_t q = p;
                if (!opaque && !walk(q, p + l, enc, depth + 1, false, false))
                    return false;
                p += l;
            }
        }
    }

    const uint8_t *b_;
    size_t len_;
    DcmError *err_ = nullptr;
    uint64_t pixel_offset_ = 0;
    uint32_t pixel_header_ = 0;
};

struct ReadResult {
    OFCondition cond;
    size_t pos = 0;
    bool eos = false;
};

ReadResult read_into(DcmFileFormat &ff, const void *buf, size_t len, bool until_pixels)
{
    DcmInputBufferStream s;
    s.setBuffer(buf, (offile_off_t)len);
    s.setEos();
    ReadResult r;
    ff.transferInit();
    if (until_pixels)
        r.cond = ff.readUntilTag(s, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, DCM_PixelData);
    else
        r.cond = ff.read(s, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
    ff.transferEnd();
    r.pos = (size_t)s.tell();
    r.eos = s.eos();
    return r;
}

bool is_deflated(E_TransferSyntax x) { return DcmXfer(x).getStreamCompression() != ESC_none; }

/* DCMTK's own guess of a dataset's encoding when the meta header names none
 * (DcmItem::checkTransferSyntax is protected: this subclass only exposes it). */
struct XferProbe : public DcmDataset {
    E_TransferSyntax detect(DcmInputStream &in) { return checkTransferSyntax(in); }
};

/* The transfer syntax DCMTK will read the dataset with: the meta header's when DCMTK knows it,
 * else what DCMTK detects from the dataset's first bytes. */
E_TransferSyntax expected_xfer(const uint8_t *d, size_t n, const std::string &ts_uid)
{
    if (!ts_uid.empty()) {
        DcmXfer xf(ts_uid.c_str());
        if (xf.getXfer() != EXS_Unknown)
            return xf.getXfer();
    }
    if (n < 6)
        return EXS_LittleEndianImplicit; /* too short for any element: the walk refuses it */
    DcmInputBufferStream s;
    s.setBuffer(d, (offile_off_t)n);
    s.setEos();
    XferProbe probe;
    return probe.detect(s);
}

/* A deflated dataset (PS3.5 A.5: raw deflate, explicit VR little endian) is inflated into a
 * bounded scratch buffer and walked there, before DCMTK inflates it itself. A deflate stream
 * expands at most ~1032 times, so the bound is what the upload size allows anyway; beyond
 * 1 GiB the file is refused. */
const size_t INFLATED_MAX = (size_t)1 << 30;

bool deflated_framing(DcmError *err, const uint8_t *d, size_t n)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
        return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    std::vector<uint8_t> out;
    int zr = Z_OK;
    zs.next_in = const_cast<Bytef *>(d);
    size_t left = n;
    while (zr != Z_STREAM_END) {
        if (out.size() - zs.total_out < 65536) {
            if (out.size() >= INFLATED_MAX) {
                inflateEnd(&zs);
                return dcm_int_fail(err, DCM_ERR_FORMAT, "deflated dataset larger than %zu bytes", INFLATED_MAX);
            }
            out.resize(std::min(INFLATED_MAX, std::max<size_t>(out.size() * 2, 1 << 20)));
        }
        if (zs.avail_in == 0 && left) {
            zs.avail_in = (uInt)std::min<size_t>(left, 1u << 30);
            left -= zs.avail_in;
        }
        zs.next_out = out.data() + zs.total_out;
        zs.avail_out = (uInt)std::min<size_t>(out.size() - zs.total_out, 1u << 30);
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && zs.avail_in == 0 && !left)
            break; /* input ended without the stream's end: DCMTK accepts it, the walk judges */
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            inflateEnd(&zs);
            return dcm_int_fail(err, DCM_ERR_FORMAT, "not a readable DICOM file: bad deflated data");
        }
    }
    size_t total = zs.total_out;
    inflateEnd(&zs);
    Framing fr(out.data(), total);
    uint64_t pix = 0;
    return fr.dataset(err, 0, EXS_LittleEndianExplicit, &pix);
}

/* The parse proper, on a buffer that starts with the preamble, the meta header or the
 * dataset. */
bool parse(DcmError *err, const uint8_t *b, size_t len, bool header_only, DcmObject *obj)
{
    DcmFileFormat &ff = *obj->ff;
    DcmDataset *ds = ff.getDataset();

    /* Our walk first, with the transfer syntax DCMTK will use: nothing reaches DCMTK unless
     * every declared length fits in the buffer. */
    Framing fr(b, len);
    size_t start = 0;
    std::string ts_uid;
    if (!fr.dataset_start(err, &start, &ts_uid))
        return false;
    E_TransferSyntax expected = expected_xfer(b + start, len - start, ts_uid);
    uint64_t pix = 0;
    if (is_deflated(expected) ? !deflated_framing(err, b + start, len - start)
                              : !fr.dataset(err, start, expected, &pix))
        return false;

    ReadResult r = read_into(ff, b, len, header_only);
    if (r.cond.bad())
        return dcm_int_fail(err, DCM_ERR_FORMAT, "not a readable DICOM file: %s", r.cond.text());
    E_TransferSyntax x = ds->getOriginalXfer();
    if (is_deflated(x) && !is_deflated(expected) && !deflated_framing(err, b + start, len - start))
        return false;
    if (is_deflated(x)) {
        /* DCMTK's offsets are in the inflated stream, ours cannot check it: DCMTK reads it all
         * (zlib reports a cut stream) and the caller gets no PixelData offset. */
        if (header_only) {
            ff.clear();
            r = read_into(ff, b, len, false);
            if (r.cond.bad())
                return dcm_int_fail(err, DCM_ERR_FORMAT, "not a readable DICOM file: %s", r.cond.text());
        }
        if (!r.eos)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "not a readable DICOM file: stopped at offset %zu of %zu",
                                r.pos, len);
        obj->has_pixel_data = ds->tagExists(DCM_PixelData);
        if (header_only)
            delete ds->remove(DCM_PixelData);
        obj->header_only = header_only;
        return true;
    }
    if (x != expected && !fr.dataset(err, start, x, &pix)) /* DCMTK decided otherwise */
        return false;
    obj->pixel_offset = pix;
    obj->pixel_header = pix ? fr.pixel_header : 0;
    obj->has_pixel_data = pix != 0;
    obj->header_only = header_only;
    if (header_only && pix != 0) {
        /* DCMTK must have stopped exactly at the PixelData we found */
        if (r.pos != pix || ds->tagExists(DCM_PixelData))
            return dcm_int_fail(err, DCM_ERR_FORMAT,
                                "not a readable DICOM file: parser stopped at %zu, PixelData at %llu",
                                r.pos, (unsigned long long)pix);
    } else if (!r.eos) {
        return dcm_int_fail(err, DCM_ERR_FORMAT, "not a readable DICOM file: stopped at offset %zu of %zu",
                            r.pos, len);
    }
    return true;
}

} // namespace

extern "C" bool dcm_parse(DcmError *err, const void *buf, size_t len, unsigned flags, DcmObject **out)
{
    try {
        if (out)
            *out = nullptr;
        if (!out || (!buf && len))
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_parse: bad arguments");
        if (len == 0)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "empty buffer");
        const uint8_t *b = static_cast<const uint8_t *>(buf);
        size_t skip = 0;
        if (len >= 8 && memcmp(b, "DICM", 4) == 0 && b[4] == 0x02 && b[5] == 0x00)
            skip = 4; /* "DICM" without the preamble: DCMTK wants one or neither */
        std::unique_ptr<DcmObject> obj(new DcmObject);
        obj->ff.reset(new DcmFileFormat);
        if (!parse(err, b + skip, len - skip, (flags & DCM_PARSE_HEADER_ONLY) != 0, obj.get()))
            return false;
        if (obj->pixel_offset)
            obj->pixel_offset += skip;
        DcmFileFormat &ff = *obj->ff;
        DcmDataset *ds = ff.getDataset();
        if (ds->card() == 0)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "not a DICOM file: empty dataset");

        DcmMetaInfo *meta = ff.getMetaInfo();
        obj->has_meta = meta && meta->card() > 0;
        OFString ts;
        if (obj->has_meta && meta->findAndGetOFString(DCM_TransferSyntaxUID, ts).good() && !ts.empty())
            obj->ts.assign(ts.c_str(), ts.length());
        if (obj->ts.empty()) {
            E_TransferSyntax x = ds->getOriginalXfer();
            obj->ts = DcmXfer(x == EXS_Unknown ? EXS_LittleEndianImplicit : x).getXferID();
        }
        dcm_int_object_refresh(obj.get());
        *out = obj.release();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_object_destroy(DcmObject *obj)
{
    try {
        delete obj;
    } catch (...) {
    }
}

extern "C" size_t dcm_object_memory(const DcmObject *obj) { return obj ? obj->memory : 0; }

extern "C" const char *dcm_object_transfer_syntax(const DcmObject *obj)
{
    return obj ? obj->ts.c_str() : "";
}

extern "C" bool dcm_object_has_meta(const DcmObject *obj) { return obj && obj->has_meta; }

extern "C" uint64_t dcm_object_pixel_data_offset(const DcmObject *obj)
{
    return obj && obj->has_pixel_data ? obj->pixel_offset : 0;
}

extern "C" uint64_t dcm_object_pixel_data_header_offset(const DcmObject *obj)
{
    return obj && obj->has_pixel_data && obj->pixel_offset && obj->pixel_header
               ? obj->pixel_offset - obj->pixel_header
               : 0;
}

/* ---- reading tags ------------------------------------------------------------------------ */

extern "C" int dcm_get_string(DcmError *err, const DcmObject *cobj, uint32_t tag, char **value)
{
    try {
        if (value)
            *value = nullptr;
        if (!cobj || !value) {
            dcm_int_fail(err, DCM_ERR_ARG, "dcm_get_string: bad arguments");
            return -1;
        }
        DcmObject *obj = const_cast<DcmObject *>(cobj);
        std::string text;
        {
            std::lock_guard<std::mutex> g(obj->lock);
            DcmElement *e = find_top(obj, tag);
            if (!e)
                return 0;
            LazyConv conv(obj->charset);
            Leaf k = leaf_text(e, conv, text);
            if (k == LEAF_SEQUENCE || k == LEAF_BINARY) {
                dcm_int_fail(err, DCM_ERR_ARG, "tag (%04x,%04x) is a %s, not text", tag >> 16,
                             tag & 0xFFFF, k == LEAF_SEQUENCE ? "sequence" : "binary value");
                return -1;
            }
        }
        char *s = static_cast<char *>(malloc(text.size() + 1));
        if (!s) {
            dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
            return -1;
        }
        memcpy(s, text.data(), text.size());
        s[text.size()] = '\0';
        *value = s;
        return 1;
    }
    DCM_CATCH(err, -1)
}

/* ---- JSON -------------------------------------------------------------------------------- */

namespace {

const char UNKNOWN_NAME[] = "Unknown Tag & Data";

struct JsonCtx {
    int format;
    size_t max_length;
    std::string text; /* scratch */
    const uint32_t *ignore = nullptr; /* tags never TooLong (?ignore-length=) */
    size_t nignore = 0;
    bool has_pixel_data = false; /* the file has top-level PixelData: listed as a Null placeholder */
    bool header = false; /* the file meta information: group 0002 listed, binary values left out */
};

cJSON *must(cJSON *j)
{
    if (!j)
        throw std::bad_alloc();
    return j;
}

/* Adds item to obj under key, or deletes it and throws. */
void add(cJSON *obj, const char *key, cJSON *item)
{
    must(item);
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        throw std::bad_alloc();
    }
}

struct JsonGuard {
    cJSON *j;
    explicit JsonGuard(cJSON *x) : j(must(x)) {}
    ~JsonGuard() { cJSON_Delete(j); }
    cJSON *release() { cJSON *x = j; j = nullptr; return x; }
};

cJSON *item_json(DcmItem *item, const std::string &charset, JsonCtx &ctx, bool top,
                 const std::vector<DcmElement *> *index);

cJSON *element_json(DcmElement *e, LazyConv &conv, const std::string &charset, JsonCtx &ctx,
                    const char **type)
{
    Leaf k = leaf_text(e, conv, ctx.text);
    switch (k) {
    case LEAF_SEQUENCE: {
        *type = "Sequence";
        JsonGuard arr(cJSON_CreateArray());
        DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(e);
        for (::DcmObject *o = sq->nextInContainer(nullptr); o; o = sq->nextInContainer(o)) {
            cJSON *it = item_json(static_cast<DcmItem *>(o), charset, ctx, false, nullptr);
            if (!cJSON_AddItemToArray(arr.j, it)) {
                cJSON_Delete(it);
                throw std::bad_alloc();
            }
        }
        return arr.release();
    }
    case LEAF_TEXT:
        if (ctx.max_length && ctx.text.size() > ctx.max_length) {
            *type = "TooLong";
            return cJSON_CreateNull();
        }
        *type = "String";
        return cJSON_CreateString(ctx.text.c_str());
    case LEAF_NULL: *type = "Null"; return cJSON_CreateNull();
    default: *type = "Null"; return cJSON_CreateNull(); /* binary: Orthanc's /tags says Null */
    }
}

cJSON *item_json(DcmItem *item, const std::string &inherited, JsonCtx &ctx, bool top,
                 const std::vector<DcmElement *> *index)
{
    /* an item may carry its own SpecificCharacterSet */
    std::string charset = inherited;
    DcmElement *cs = nullptr;
    if (!top && item->findAndGetElement(DCM_SpecificCharacterSet, cs, OFFalse).good() && cs)
        charset = raw_string(cs);
    LazyConv conv(charset);
    JsonGuard obj(cJSON_CreateObject());
    std::vector<DcmElement *> elems;
    if (!index) {
        for (::DcmObject *o = item->nextInContainer(nullptr); o; o = item->nextInContainer(o))
            elems.push_back(static_cast<DcmElement *>(o));
        index = &elems;
    }
    for (DcmElement *e : *index) {
        uint32_t key = key_of(e);
        if (top && key >= 0x7FE00010)
            break;
        if ((key >> 16) == 0x0002 && !ctx.header)
            continue;
        if (ctx.header && (e->ident() == EVR_OB || e->ident() == EVR_OW || e->ident() == EVR_UN))
            continue; /* as Orthanc's /header (FileMetaInformationVersion is not listed) */
        char hex[10];
        snprintf(hex, sizeof hex, "%04x,%04x", key >> 16, key & 0xFFFF);
        const char *type = nullptr;
        size_t saved_max = ctx.max_length;
        for (size_t i = 0; i < ctx.nignore; i++)
            if (ctx.ignore[i] == key)
                ctx.max_length = 0;
        cJSON *value = must(element_json(e, conv, charset, ctx, &type));
        ctx.max_length = saved_max;
        if (ctx.format == DCM_JSON_FULL) {
            JsonGuard entry(cJSON_CreateObject());
            DcmTag t(e->getTag());
            const char *name = t.getTagName();
            add(entry.j, "Name", cJSON_CreateString(name ? name : UNKNOWN_NAME));
            const char *creator = e->getTag().getPrivateCreator();
            if (creator && (key >> 16) % 2 == 1 && (key & 0xFFFF) > 0x00FF && e->ident() != EVR_SQ)
                add(entry.j, "PrivateCreator", cJSON_CreateString(creator));
            add(entry.j, "Type", cJSON_CreateString(type));
            add(entry.j, "Value", value);
            add(obj.j, hex, entry.release());
        } else {
            const char *key_name = hex;
            DcmTag t(e->getTag()); /* owns the name key_name may point to */
            if (ctx.format == DCM_JSON_SIMPLIFY) {
                /* every tag by its name, unknown ones "Unknown Tag & Data"; of tags sharing a
                 * name the last wins (Orthanc) */
                const char *name = t.getTagName();
                key_name = name ? name : UNKNOWN_NAME;
                cJSON_DeleteItemFromObjectCaseSensitive(obj.j, key_name);
            }
            add(obj.j, key_name, value);
        }
    }
    if (top && ctx.has_pixel_data) { /* PixelData itself is never sent: a placeholder */
        if (ctx.format == DCM_JSON_FULL) {
            JsonGuard entry(cJSON_CreateObject());
            add(entry.j, "Name", cJSON_CreateString("PixelData"));
            add(entry.j, "Type", cJSON_CreateString("Null"));
            add(entry.j, "Value", cJSON_CreateNull());
            add(obj.j, "7fe0,0010", entry.release());
        } else {
            add(obj.j, ctx.format == DCM_JSON_SIMPLIFY ? "PixelData" : "7fe0,0010", cJSON_CreateNull());
        }
    }
    return obj.release();
}

} // namespace

extern "C" cJSON *dcm_to_json(DcmError *err, const DcmObject *cobj, int format, size_t max_length)
{
    return dcm_to_json_ex(err, cobj, format, max_length, nullptr, 0);
}

extern "C" cJSON *dcm_to_json_ex(DcmError *err, const DcmObject *cobj, int format,
                                 size_t max_length, const uint32_t *ignore_length, size_t nignore)
{
    try {
        if (!cobj || (format != DCM_JSON_FULL && format != DCM_JSON_SIMPLIFY && format != DCM_JSON_SHORT)) {
            dcm_int_fail(err, DCM_ERR_ARG, "dcm_to_json: bad arguments");
            return nullptr;
        }
        DcmObject *obj = const_cast<DcmObject *>(cobj);
        JsonCtx ctx{format, max_length, std::string(), ignore_length, nignore, cobj->has_pixel_data};
        std::lock_guard<std::mutex> g(obj->lock);
        return item_json(obj->ff->getDataset(), obj->charset, ctx, true, &obj->index);
    }
    DCM_CATCH(err, nullptr)
}

extern "C" cJSON *dcm_header_json(DcmError *err, const DcmObject *cobj, int format)
{
    try {
        if (!cobj || (format != DCM_JSON_FULL && format != DCM_JSON_SIMPLIFY && format != DCM_JSON_SHORT)) {
            dcm_int_fail(err, DCM_ERR_ARG, "dcm_header_json: bad arguments");
            return nullptr;
        }
        DcmObject *obj = const_cast<DcmObject *>(cobj);
        JsonCtx ctx{format, 0, std::string(), nullptr, 0, false, true};
        std::lock_guard<std::mutex> g(obj->lock);
        return item_json(obj->ff->getMetaInfo(), std::string(), ctx, true, nullptr);
    }
    DCM_CATCH(err, nullptr)
}

/* ---- writing ----------------------------------------------------------------------------- */

extern "C" bool dcm_write(DcmError *err, DcmObject *obj, const char *transfer_syntax, void **buf,
                          size_t *len)
{
    unsigned char *data = nullptr;
    try {
        if (buf)
            *buf = nullptr;
        if (len)
            *len = 0;
        if (!obj || !buf || !len)
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_write: bad arguments");
        std::lock_guard<std::mutex> g(obj->lock);
        if (obj->header_only && obj->has_pixel_data)
            return dcm_int_fail(err, DCM_ERR_ARG,
                                "cannot write an object parsed without its pixel data");
        DcmFileFormat &ff = *obj->ff;
        DcmDataset *ds = ff.getDataset();
        E_TransferSyntax cur = ds->getCurrentXfer();
        if (cur == EXS_Unknown)
            cur = ds->getOriginalXfer();
        if (cur == EXS_Unknown)
            cur = EXS_LittleEndianExplicit;
        E_TransferSyntax to = cur;
        if (transfer_syntax) {
            to = DcmXfer(transfer_syntax).getXfer();
            if (to == EXS_Unknown)
                return dcm_int_fail(err, DCM_ERR_ARG, "unknown transfer syntax %s", transfer_syntax);
            if (to != cur && (DcmXfer(to).isEncapsulated() || DcmXfer(cur).isEncapsulated()))
                return dcm_int_fail(err, DCM_ERR_ARG,
                                    "cannot transcode %s to %s (compressed pixel data)",
                                    DcmXfer(cur).getXferID(), transfer_syntax);
        }
        if (!ds->canWriteXfer(to, cur))
            return dcm_int_fail(err, DCM_ERR_ARG, "cannot write the dataset as %s", DcmXfer(to).getXferID());

        size_t cap = 0, used = 0;
        std::vector<unsigned char> chunk(64 * 1024);
        DcmOutputBufferStream out(chunk.data(), (offile_off_t)chunk.size());
        auto drain = [&]() {
            void *p = nullptr;
            offile_off_t n = 0;
            out.flushBuffer(p, n);
            if (n <= 0)
                return;
            if (used + (size_t)n > cap) {
                size_t ncap = std::max(cap * 2, used + (size_t)n + 4096);
                unsigned char *nd = static_cast<unsigned char *>(realloc(data, ncap));
                if (!nd)
                    throw std::bad_alloc();
                data = nd;
                cap = ncap;
            }
            memcpy(data + used, p, (size_t)n);
            used += (size_t)n;
        };
        OFCondition c;
        ff.transferInit();
        for (;;) {
            c = ff.write(out, to, EET_ExplicitLength, nullptr, EGL_recalcGL, EPD_noChange, 0, 0, 0,
                         EWM_createNewMeta);
            if (c != EC_StreamNotifyClient)
                break;
            drain(); /* our chunk is full: move it to the result and go on */
        }
        if (c.good()) { /* a compression filter (deflate) may still hold bytes */
            do {
                out.flush();
                drain();
            } while (!out.isFlushed());
        }
        ff.transferEnd();
        if (c.bad()) {
            free(data);
            return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot write DICOM: %s", c.text());
        }
        *buf = data;
        *len = used;
        return true;
    }
    catch (const std::bad_alloc &) {
        free(data);
        return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    }
    catch (...) {
        free(data);
        return dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error while writing");
    }
}

/* ---- global set-up ----------------------------------------------------------------------- */

extern "C" bool dcm_global_init(DcmError *err)
{
    try {
        OFLog::configure(OFLogger::WARN_LOG_LEVEL);
        dcmtk::log4cplus::Logger root = dcmtk::log4cplus::Logger::getRoot();
        root.removeAllAppenders();
        root.addAppender(dcmtk::log4cplus::SharedAppenderPtr(new CallbackAppender));
        root.setLogLevel(dcmtk::log4cplus::WARN_LOG_LEVEL);
        /* dcmdata warns on every header-only parse ("PixelData encountered, skipping rest") and
         * on many harmless oddities; its errors are enough (and cheaper: no message built). */
        OFLog::getLogger("dcmtk.dcmdata").setLogLevel(OFLogger::ERROR_LOG_LEVEL);
        if (!dcmDataDict.isDictionaryLoaded())
            return dcm_int_fail(err, DCM_ERR_INTERNAL,
                                "DICOM dictionary not loaded (check DCMDICTPATH)");
        dcm_int_image_init();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_set_log_fn(DcmLogFn fn) { g_log_fn.store(fn); }

extern "C" bool dcm_set_default_encoding(DcmError *err, const char *name)
{
    /* Orthanc's Encoding names (Enumerations.cpp) -> the SpecificCharacterSet they stand for */
    for (size_t i = 0; i < sizeof k_encodings / sizeof k_encodings[0]; i++) {
        if (name && strcasecmp(name, k_encodings[i].name) == 0) {
            g_default_encoding.store((int)i);
            return true;
        }
    }
    return dcm_int_fail(err, DCM_ERR_ARG, "unknown DefaultEncoding \"%s\"", name ? name : "");
}

const char *dcm_int_default_charset(void)
{
    return k_encodings[g_default_encoding.load()].charset;
}

extern "C" const char *dcm_default_encoding(void)
{
    return k_encodings[g_default_encoding.load()].name;
}

extern "C" bool dcm_dictionary_add(DcmError *err, uint32_t tag, const char *vr, const char *name,
                                   int min_multiplicity, int max_multiplicity,
                                   const char *private_creator)
{
    try {
        if (!vr || !name || !*name)
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_dictionary_add: bad arguments");
        DcmVR v(vr);
        if (!v.isStandard())
            return dcm_int_fail(err, DCM_ERR_ARG, "unknown VR \"%s\"", vr);
        Uint16 g = (Uint16)(tag >> 16), e = (Uint16)(tag & 0xFFFF);
        if (private_creator && !*private_creator)
            private_creator = nullptr;
        /* the name resolves to the data element as declared (gggg,10ee), not to the
         * dictionary's low-byte key (dcmtk_value.cpp) */
        if (private_creator && (g & 1))
            dcm_int_private_name_add(name, tag, private_creator);
        /* private tags are matched on their low byte within the creator's block */
        if (private_creator && (g & 1) && e > 0x00FF)
            e &= 0x00FF;
        if (max_multiplicity < 0)
            max_multiplicity = DcmVariableVM;
        if (min_multiplicity < 0)
            min_multiplicity = 1;
        DcmDictEntry *entry = new DcmDictEntry(g, e, v, name, min_multiplicity, max_multiplicity,
                                               "minipacs", OFTrue, private_creator);
        DcmDataDictionary &dict = dcmDataDict.wrlock();
        dict.addEntry(entry);
        dcmDataDict.wrunlock();
        return true;
    }
    DCM_CATCH(err, false)
}

} // namespace mp
