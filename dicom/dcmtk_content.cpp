/* dcmtk_content.cpp -- raw values by path (/instances/{id}/content/...), tag names, and new
 * instances from JSON (/tools/create-dicom).
 *
 * DESIGN
 * - /content reads the stored file header-only (dcm_parse with DCM_PARSE_HEADER_ONLY): the
 *   tree then holds everything but the pixels. Top-level PixelData is read in place from the
 *   caller's buffer at the PixelData offset the parse found: a defined length is one slice of
 *   the buffer, an undefined length (encapsulated) is walked item by item (items are always
 *   little endian, PS3.5 A.4). So a 500 MB multi-frame file is held once (the caller's buffer)
 *   plus the one fragment answered. Deflated files have no such offset: only for them, and
 *   only when PixelData is asked, the file is parsed fully.
 * - Values are DCMTK's getPartialValue() bytes, i.e. the stored value in little endian (the
 *   tree is in local byte order, x86/arm64 little endian); text VRs are converted to UTF-8
 *   with the same converter as /tags (dcm_int_to_utf8), a sequence item's own
 *   SpecificCharacterSet applying inside it.
 * - dcm_create builds a DcmFileFormat from Orthanc-style JSON, then writes it with the
 *   regular writer (dcm_int_object_from + dcm_write). Images: PNG is decoded by libpng (8- or
 *   16-bit gray or RGB, palette expanded, interlaced or not, alpha dropped as Orthanc); JPEG is
 *   kept as is, encapsulated in one fragment (JPEG baseline transfer syntax, dimensions from
 *   its SOF marker). PDF goes into EncapsulatedDocument.
 */
#include "dcmtk/config/osconfig.h" /* first, as DCMTK requires */

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcdicent.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcsequen.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrobow.h"
#include "dcmtk/dcmdata/dcxfer.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include "dicom/dicom_int.h"

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

/* ---- tags by name ------------------------------------------------------------------------ */

extern "C" bool dcm_tag_parse(const char *text, uint32_t *tag)
{
    try {
        return dcm_int_tag_resolve(text, tag, nullptr);
    } catch (...) {
        return false;
    }
}

extern "C" void dcm_tag_vr(uint32_t tag, char vr[3])
{
    try {
        DcmTag t((Uint16)(tag >> 16), (Uint16)(tag & 0xFFFF));
        const char *n = t.getVR().getValidVRName();
        snprintf(vr, 3, "%s", n ? n : "UN");
    } catch (...) {
        snprintf(vr, 3, "UN");
    }
}

extern "C" void dcm_tag_name(uint32_t tag, char *out, size_t size)
{
    try {
        DcmTag t((Uint16)(tag >> 16), (Uint16)(tag & 0xFFFF));
        const char *n = t.getTagName();
        if (n && strcmp(n, "Unknown Tag & Data") != 0) {
            snprintf(out, size, "%s", n);
            return;
        }
    } catch (...) {
    }
    snprintf(out, size, "%04x,%04x", tag >> 16, tag & 0xFFFF);
}

/* ---- /content ---------------------------------------------------------------------------- */

namespace {

uint32_t key_of(const DcmElement *e)
{
    return (uint32_t)e->getTag().getGTag() << 16 | e->getTag().getETag();
}

std::string tag_seg(uint32_t key)
{
    char b[16];
    snprintf(b, sizeof b, "%04x-%04x", key >> 16, key & 0xFFFF);
    return b;
}

bool parse_index(const char *s, unsigned long *out)
{
    if (!*s) return false;
    char *end;
    *out = strtoul(s, &end, 10);
    return *end == '\0' && s[0] != '-' && s[0] != '+';
}

uint32_t rd32(const uint8_t *p, bool big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

struct Result {
    bool is_list = false;
    std::vector<std::string> names;
    std::string value;
    bool is_text = false;
};

/* PixelData read from the file bytes. off: offset of its value (after the header). */
bool pixels_in_place(DcmError *err, const uint8_t *b, size_t len, uint64_t off, bool big,
                     const char *const *rest, size_t nrest, Result &r)
{
    if (off < 4 || off > len)
        return dcm_int_fail(err, DCM_ERR_FORMAT, "bad PixelData offset");
    uint32_t l = rd32(b + off - 4, big);
    if (l != 0xFFFFFFFFu) { /* native pixels: one item "0" holding the value, as Orthanc */
        if (l > len - off)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "PixelData cut");
        if (nrest == 0) {
            r.is_list = true;
            r.names.push_back("0");
            return true;
        }
        if (nrest > 1 || strcmp(rest[0], "0") != 0)
            return dcm_int_fail(err, DCM_ERR_MISSING, "native PixelData has one item, \"0\"");
        r.value.assign(reinterpret_cast<const char *>(b + off), l);
        return true;
    }
    unsigned long want = 0;
    if (nrest > 1 || (nrest == 1 && !parse_index(rest[0], &want)))
        return dcm_int_fail(err, DCM_ERR_MISSING, "no such fragment");
    size_t p = off;
    unsigned long i = 0;
    for (;;) {
        if (len - p < 8)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "encapsulated PixelData cut");
        uint32_t ge = rd32(b + p, false), il = rd32(b + p + 4, false);
        p += 8;
        if (ge == 0xE0DDFFFEu) /* (FFFE,E0DD) little endian as g | e << 16 */
            break;
        if (ge != 0xE000FFFEu || il > len - p)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "bad item in encapsulated PixelData");
        if (nrest == 0) {
            r.names.push_back(std::to_string(i));
        } else if (i == want) {
            r.value.assign(reinterpret_cast<const char *>(b + p), il);
            return true;
        }
        p += il;
        i++;
    }
    if (nrest == 0) {
        r.is_list = true;
        return true;
    }
    return dcm_int_fail(err, DCM_ERR_MISSING, "no fragment %lu", want);
}

/* The offset just past top-level PixelData (value at off) in the file; len when it cannot
 * be told (the framing was checked by the parse). */
size_t pixels_end(const uint8_t *b, size_t len, uint64_t off, bool big)
{
    if (off < 4 || off > len)
        return len;
    uint32_t l = rd32(b + off - 4, big);
    if (l != 0xFFFFFFFFu)
        return l > len - off ? len : (size_t)(off + l);
    size_t p = off;
    while (len - p >= 8) {
        uint32_t ge = rd32(b + p, false), il = rd32(b + p + 4, false);
        p += 8;
        if (ge == 0xE0DDFFFEu)
            return p;
        if (il > len - p)
            return len;
        p += il;
    }
    return len;
}

std::string item_charset(DcmItem *item, const std::string &inherited)
{
    DcmElement *cs = nullptr;
    if (item->findAndGetElement(DCM_SpecificCharacterSet, cs, OFFalse).good() && cs) {
        char *v = nullptr;
        Uint32 n = 0;
        if (cs->getString(v, n).good() && v)
            return std::string(v, n);
    }
    return inherited;
}

void list_item(DcmItem *item, bool top, Result &r)
{
    r.is_list = true;
    for (::DcmObject *o = item->nextInContainer(nullptr); o; o = item->nextInContainer(o)) {
        uint32_t k = key_of(static_cast<DcmElement *>(o));
        if (top && (k >> 16) == 0x0002)
            continue;
        r.names.push_back(tag_seg(k));
    }
}

bool leaf_value(DcmError *err, DcmElement *e, const std::string &charset, Result &r)
{
    Uint32 n = e->getLengthField();
    if (n == DCM_UndefinedLength) { /* nested encapsulated pixel data: fragments not served */
        return dcm_int_fail(err, DCM_ERR_MISSING, "encapsulated value");
    }
    std::string raw(n, '\0');
    if (n > 0 && e->getPartialValue(&raw[0], 0, n, nullptr, EBO_LittleEndian).bad())
        return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot read the value of (%04x,%04x)",
                            key_of(e) >> 16, key_of(e) & 0xFFFF);
    DcmEVR vr = e->getTag().getEVR();
    if (e->getTag().getVR().isaString()) {
        r.value = dcm_int_to_utf8(charset, raw.data(), raw.size(), vr == EVR_PN);
        r.is_text = true;
    } else {
        r.value.swap(raw);
    }
    return true;
}

/* Walks path from item. top: the dataset. */
bool walk(DcmError *err, DcmObject *obj, const uint8_t *file, size_t len, DcmItem *item,
          std::string charset, const char *const *path, size_t npath, bool top, Result &r)
{
    if (npath == 0) {
        list_item(item, top, r);
        if (top && obj->header_only && obj->has_pixel_data)
            r.names.push_back(tag_seg(0x7FE00010));
        return true;
    }
    uint32_t key;
    if (!dcm_tag_parse(path[0], &key))
        return dcm_int_fail(err, DCM_ERR_ARG, "not a DICOM tag: \"%s\"", path[0]);
    if (top && key == 0x7FE00010 && obj->header_only && obj->has_pixel_data && obj->pixel_offset)
        return pixels_in_place(err, file, len, obj->pixel_offset,
                               DcmXfer(obj->ts.c_str()).isBigEndian(), path + 1, npath - 1, r);
    DcmElement *e = nullptr;
    if (item->findAndGetElement(DcmTagKey((Uint16)(key >> 16), (Uint16)(key & 0xFFFF)), e,
                                OFFalse).bad() || !e)
        return dcm_int_fail(err, DCM_ERR_MISSING, "no tag %04x,%04x", key >> 16, key & 0xFFFF);
    if (!e->isLeaf()) {
        DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(e);
        if (npath == 1) {
            r.is_list = true;
            for (unsigned long i = 0; i < sq->card(); i++)
                r.names.push_back(std::to_string(i));
            return true;
        }
        unsigned long idx;
        if (!parse_index(path[1], &idx) || idx >= sq->card())
            return dcm_int_fail(err, DCM_ERR_MISSING, "no item %s", path[1]);
        DcmItem *child = sq->getItem(idx);
        return walk(err, obj, file, len, child, item_charset(child, charset), path + 2, npath - 2,
                    false, r);
    }
    if (DcmPixelData *px = dynamic_cast<DcmPixelData *>(e)) {
        DcmPixelSequence *seq = nullptr;
        E_TransferSyntax x = DcmXfer(obj->ts.c_str()).getXfer();
        if (DcmXfer(x).isEncapsulated() && px->getEncapsulatedRepresentation(x, nullptr, seq).good() && seq) {
            if (npath == 1) {
                r.is_list = true;
                for (unsigned long i = 0; i < seq->card(); i++)
                    r.names.push_back(std::to_string(i));
                return true;
            }
            unsigned long idx;
            DcmPixelItem *pi = nullptr;
            if (npath > 2 || !parse_index(path[1], &idx) || seq->getItem(pi, idx).bad() || !pi)
                return dcm_int_fail(err, DCM_ERR_MISSING, "no fragment %s", path[1]);
            Uint8 *d = nullptr;
            if (pi->getLength() > 0 && pi->getUint8Array(d).good() && d)
                r.value.assign(reinterpret_cast<const char *>(d), pi->getLength());
            return true;
        }
    }
    if (top && key == 0x7FE00010) { /* native PixelData parsed in full: item "0" */
        if (npath == 1) {
            r.is_list = true;
            r.names.push_back("0");
            return true;
        }
        if (npath > 2 || strcmp(path[1], "0") != 0)
            return dcm_int_fail(err, DCM_ERR_MISSING, "native PixelData has one item, \"0\"");
        return leaf_value(err, e, charset, r);
    }
    if (npath > 1)
        return dcm_int_fail(err, DCM_ERR_MISSING, "(%04x,%04x) has no children", key >> 16, key & 0xFFFF);
    return leaf_value(err, e, charset, r);
}

} // namespace

extern "C" bool dcm_content(DcmError *err, const void *file, size_t len, const char *const *path,
                            size_t npath, DcmContent *out)
{
    try {
        if (!out || (!path && npath))
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_content: bad arguments");
        memset(out, 0, sizeof *out);
        DcmObject *raw = nullptr;
        if (!dcm_parse(err, file, len, DCM_PARSE_HEADER_ONLY, &raw))
            return false;
        std::unique_ptr<DcmObject> obj(raw);
        const uint8_t *fb = static_cast<const uint8_t *>(file);
        if (obj->header_only && obj->has_pixel_data && obj->pixel_offset &&
            pixels_end(fb, len, obj->pixel_offset, DcmXfer(obj->ts.c_str()).isBigEndian()) < len) {
            /* Elements stored after PixelData (trailing padding, ...): the header-only parse
             * stopped before them. Rare: only then, and only for the top-level list or a tag
             * after PixelData, the file is parsed fully (as Orthanc lists and serves them). */
            uint32_t key = 0;
            if (npath == 0 || (dcm_tag_parse(path[0], &key) && key > 0x7FE00010)) {
                raw = nullptr;
                if (!dcm_parse(err, file, len, 0, &raw))
                    return false;
                obj.reset(raw);
            }
        }
        if (npath > 0 && obj->header_only && obj->has_pixel_data && !obj->pixel_offset) {
            /* deflated: no offset into the file; parse it all when PixelData is wanted */
            uint32_t key;
            if (dcm_tag_parse(path[0], &key) && key == 0x7FE00010) {
                raw = nullptr;
                if (!dcm_parse(err, file, len, 0, &raw))
                    return false;
                obj.reset(raw);
            }
        }
        Result r;
        {
            std::lock_guard<std::mutex> g(obj->lock);
            if (!walk(err, obj.get(), fb, len, obj->ff->getDataset(), obj->charset, path, npath,
                      true, r))
                return false;
        }
        out->is_list = r.is_list;
        if (r.is_list) {
            out->names = static_cast<char **>(calloc(r.names.size() + 1, sizeof(char *)));
            if (!out->names)
                throw std::bad_alloc();
            for (const std::string &s : r.names) {
                if (!(out->names[out->nnames] = strdup(s.c_str()))) {
                    dcm_content_cleanup(out);
                    throw std::bad_alloc();
                }
                out->nnames++;
            }
        } else {
            out->data = malloc(r.value.size() + 1);
            if (!out->data)
                throw std::bad_alloc();
            memcpy(out->data, r.value.data(), r.value.size());
            static_cast<char *>(out->data)[r.value.size()] = '\0';
            out->len = r.value.size();
            out->is_text = r.is_text;
        }
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_content_cleanup(DcmContent *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    free(c->data);
    memset(c, 0, sizeof *c);
}

/* ---- /tools/create-dicom ----------------------------------------------------------------- */

namespace {

struct CreateError {
    int code;
    std::string msg;
};

[[noreturn]] void bad(const std::string &m) { throw CreateError{DCM_ERR_ARG, m}; }

void check(OFCondition c, const std::string &what)
{
    if (c.bad())
        bad(what + ": " + c.text());
}

bool has_value(DcmDataset *ds, const DcmTagKey &k)
{
    OFString s;
    return ds->findAndGetOFString(k, s).good() && !s.empty();
}

std::string new_uid(const char *root)
{
    char uid[100];
    dcmGenerateUniqueIdentifier(uid, root);
    return uid;
}

uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

struct Image {
    unsigned width = 0, height = 0, channels = 0, bits = 8;
    std::vector<uint8_t> pixels; /* native: rows of width*channels samples, 16-bit little endian */
};

/* ---- PNG through libpng ----------------------------------------------------------------
 * libpng reports errors by longjmp: png_decode_raw keeps no C++ object alive across its
 * setjmp (plain pointers, malloc'd buffers), and the C++ side (decode_png) only sees a
 * message. The buffer is untrusted: reads past its end, bad CRCs, bad zlib data and
 * dimensions beyond DICOM's 16-bit Rows/Columns are errors, and the decoded size is capped
 * before anything is allocated. */
const size_t PNG_MAX_DECODED = (size_t)512 << 20;

struct PngSrc {
    const uint8_t *p;
    size_t n, off;
};

struct PngRaw {
    unsigned width, height, channels, bits;
    uint8_t *pixels; /* malloc'd */
};

extern "C" void png_on_read(png_structp png, png_bytep out, size_t len)
{
    PngSrc *s = static_cast<PngSrc *>(png_get_io_ptr(png));
    if (len > s->n - s->off)
        png_error(png, "truncated PNG");
    memcpy(out, s->p + s->off, len);
    s->off += len;
}

/* The message buffer (160 bytes) keeps the error, after the last warning: libpng explains
 * some errors in a warning first ("Image width exceeds user limit in IHDR"). */
extern "C" void png_on_error(png_structp png, png_const_charp msg)
{
    char *buf = static_cast<char *>(png_get_error_ptr(png));
    char text[400]; /* no C++ object here: png_longjmp skips destructors */
    snprintf(text, sizeof text, "%.200s%s%.159s%s", msg ? msg : "error", buf[0] ? " (" : "", buf,
             buf[0] ? ")" : "");
    snprintf(buf, 160, "%.159s", text);
    png_longjmp(png, 1);
}

extern "C" void png_on_warning(png_structp png, png_const_charp msg)
{
    snprintf(static_cast<char *>(png_get_error_ptr(png)), 160, "%s", msg);
}

/* Decodes to 8- or 16-bit gray or RGB (alpha dropped, as Orthanc; palette expanded; 16-bit
 * samples in little endian). false with msg set on a bad or unsupported PNG. */
bool png_decode_raw(const uint8_t *b, size_t n, PngRaw *out, char msg[160])
{
    memset(out, 0, sizeof *out);
    if (n < 8 || png_sig_cmp(b, 0, 8) != 0) {
        snprintf(msg, 160, "not a PNG image");
        return false;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        snprintf(msg, 160, "out of memory");
        return false;
    }
    PngSrc src = {b, n, 0};
    uint8_t *volatile pixels = nullptr;
    png_bytep *volatile rows = nullptr;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        free(pixels);
        free(rows);
        return false;
    }
    png_set_read_fn(png, &src, png_on_read);
    png_set_user_limits(png, 65535, 65535); /* Rows and Columns are US */
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int depth = 0, color = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    if (depth == 16)
        png_set_swap(png); /* DICOM little endian */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    {
        unsigned ch = png_get_channels(png, info), bits = png_get_bit_depth(png, info);
        size_t rowbytes = png_get_rowbytes(png, info);
        if ((ch != 1 && ch != 3) || (bits != 8 && bits != 16) ||
            rowbytes != (size_t)w * ch * (bits / 8))
            png_error(png, "unsupported PNG layout");
        if (rowbytes * h > PNG_MAX_DECODED)
            png_error(png, "PNG too large once decoded");
        pixels = static_cast<uint8_t *>(malloc(rowbytes * h + 1));
        rows = static_cast<png_bytep *>(malloc(sizeof(png_bytep) * h));
        if (!pixels || !rows)
            png_error(png, "out of memory");
        for (png_uint_32 y = 0; y < h; y++)
            rows[y] = pixels + y * rowbytes;
        png_read_image(png, rows);
        png_read_end(png, nullptr);
        *out = PngRaw{(unsigned)w, (unsigned)h, ch, bits, pixels};
    }
    free(rows);
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
}

Image decode_png(const uint8_t *b, size_t n)
{
    PngRaw raw;
    char msg[160] = "";
    if (!png_decode_raw(b, n, &raw, msg)) /* Orthanc: "Bad file format" */
        throw CreateError{DCM_ERR_FORMAT, std::string(strcmp(msg, "not a PNG image") ? "bad PNG image: " : "") + msg};
    Image img;
    img.width = raw.width;
    img.height = raw.height;
    img.channels = raw.channels;
    img.bits = raw.bits;
    try {
        img.pixels.assign(raw.pixels, raw.pixels + (size_t)raw.width * raw.height * raw.channels * (raw.bits / 8));
    } catch (...) {
        free(raw.pixels);
        throw;
    }
    free(raw.pixels);
    return img;
}

/* Width, height and components of a JPEG from its SOF marker. */
void jpeg_info(const uint8_t *b, size_t n, unsigned &w, unsigned &h, unsigned &ch)
{
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8)
        bad("not a JPEG image");
    size_t p = 2;
    while (p + 4 <= n) {
        if (b[p] != 0xFF)
            bad("corrupted JPEG");
        uint8_t m = b[p + 1];
        uint16_t l = be16(b + p + 2);
        if (m == 0xC0 || m == 0xC1) {
            if (p + 2 + l > n || l < 8)
                bad("corrupted JPEG");
            h = be16(b + p + 5);
            w = be16(b + p + 7);
            ch = b[p + 9];
            if (b[p + 4] != 8 || (ch != 1 && ch != 3))
                bad("unsupported JPEG (8-bit baseline, gray or color)");
            return;
        }
        if ((m >= 0xC2 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC))
            bad("unsupported JPEG (baseline only)");
        p += 2 + l;
    }
    bad("JPEG without a frame header");
}

void image_module(DcmDataset *ds, unsigned w, unsigned h, unsigned ch, unsigned bits, bool ybr)
{
    check(ds->putAndInsertUint16(DCM_SamplesPerPixel, (Uint16)ch), "SamplesPerPixel");
    check(ds->putAndInsertString(DCM_PhotometricInterpretation,
                                 ch == 1 ? "MONOCHROME2" : ybr ? "YBR_FULL_422" : "RGB"),
          "PhotometricInterpretation");
    if (ch == 3)
        check(ds->putAndInsertUint16(DCM_PlanarConfiguration, 0), "PlanarConfiguration");
    check(ds->putAndInsertUint16(DCM_Rows, (Uint16)h), "Rows");
    check(ds->putAndInsertUint16(DCM_Columns, (Uint16)w), "Columns");
    check(ds->putAndInsertUint16(DCM_BitsAllocated, (Uint16)bits), "BitsAllocated");
    check(ds->putAndInsertUint16(DCM_BitsStored, (Uint16)bits), "BitsStored");
    check(ds->putAndInsertUint16(DCM_HighBit, (Uint16)(bits - 1)), "HighBit");
    check(ds->putAndInsertUint16(DCM_PixelRepresentation, 0), "PixelRepresentation");
}

} // namespace

extern "C" bool dcm_create(DcmError *err, const cJSON *tags, const char *content_type,
                           const void *content, size_t content_len, void **buf, size_t *len)
{
    return dcm_create_ex(err, tags, nullptr, false, content_type, content, content_len, buf, len);
}

extern "C" bool dcm_create_ex(DcmError *err, const cJSON *tags, const char *private_creator,
                              bool interpret_binary, const char *content_type, const void *content,
                              size_t content_len, void **buf, size_t *len)
{
    try {
        if (buf) *buf = nullptr;
        if (len) *len = 0;
        if (!buf || !len || (tags && !cJSON_IsObject(tags)))
            return dcm_int_fail(err, DCM_ERR_ARG, "dcm_create: bad arguments");
        std::unique_ptr<DcmFileFormat> ff(new DcmFileFormat);
        DcmDataset *ds = ff->getDataset();
        if (tags)
            dcm_int_fill_item(ds, tags, private_creator ? std::string(private_creator) : dcm_int_default_creator(),
                              interpret_binary);
        if (!ds->tagExists(DCM_SpecificCharacterSet)) {
            /* as Orthanc: written in the DefaultEncoding (values arrive in UTF-8). An encoding
             * DCMTK cannot write (ISO 2022 code extensions, Windows-1251, ASCII), or values it
             * cannot hold (a character outside the set), leave the file in UTF-8 */
            check(ds->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192"), "charset");
            std::string target = dcm_int_default_charset();
            if (target.rfind("ISO_IR ", 0) == 0 && target != "ISO_IR 192" && target != "ISO_IR 6") {
                DcmDataset trial(*ds); /* a value the set cannot hold fails it: then UTF-8 stays */
                if (trial.convertCharacterSet(OFString(target.c_str()), 0, OFFalse).good())
                    check(ds->convertCharacterSet(OFString(target.c_str()), 0, OFFalse), "character set");
            }
        }
        E_TransferSyntax xfer = EXS_LittleEndianExplicit;
        const uint8_t *c = static_cast<const uint8_t *>(content);
        const char *sop_class = UID_SecondaryCaptureImageStorage;
        if (content && content_len) {
            std::string type = content_type ? content_type : "";
            if (type == "application/pdf") {
                if (content_len < 5 || memcmp(c, "%PDF-", 5) != 0)
                    bad("not a PDF document");
                sop_class = UID_EncapsulatedPDFStorage;
                size_t n = content_len + (content_len & 1);
                std::vector<Uint8> pdf(c, c + content_len);
                pdf.resize(n, 0);
                check(ds->putAndInsertUint8Array(DCM_EncapsulatedDocument, pdf.data(), (unsigned long)n),
                      "EncapsulatedDocument");
                check(ds->putAndInsertString(DCM_MIMETypeOfEncapsulatedDocument, "application/pdf"),
                      "MIMEType");
                if (!ds->tagExists(DCM_Modality))
                    check(ds->putAndInsertString(DCM_Modality, "OT"), "Modality");
            } else if (type == "image/png") {
                Image img = decode_png(c, content_len);
                image_module(ds, img.width, img.height, img.channels, img.bits, false);
                if (img.bits == 16) { /* OW, samples already little endian */
                    check(ds->putAndInsertUint16Array(DCM_PixelData,
                                                      reinterpret_cast<const Uint16 *>(img.pixels.data()),
                                                      (unsigned long)(img.pixels.size() / 2)),
                          "PixelData");
                } else {
                    if (img.pixels.size() & 1)
                        img.pixels.push_back(0);
                    check(ds->putAndInsertUint8Array(DCM_PixelData, img.pixels.data(),
                                                     (unsigned long)img.pixels.size()),
                          "PixelData");
                }
            } else if (type == "image/jpeg") {
                unsigned w = 0, h = 0, ch = 0;
                jpeg_info(c, content_len, w, h, ch);
                image_module(ds, w, h, ch, 8, ch == 3);
                DcmPixelData *pd = new DcmPixelData(DCM_PixelData);
                /* the sequence carries PixelData's tag; its items are (FFFE,E000) */
                DcmPixelSequence *seq = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
                seq->insert(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB))); /* empty offset table */
                DcmPixelItem *frag = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
                std::vector<Uint8> j(c, c + content_len);
                if (j.size() & 1)
                    j.push_back(0);
                frag->putUint8Array(j.data(), (unsigned long)j.size());
                seq->insert(frag);
                pd->putOriginalRepresentation(EXS_JPEGProcess1, nullptr, seq);
                if (ds->insert(pd, OFTrue).bad()) {
                    delete pd;
                    bad("cannot insert PixelData");
                }
                xfer = EXS_JPEGProcess1;
            } else {
                bad("unsupported Content type \"" + type + "\" (image/png, image/jpeg, application/pdf)");
            }
        }
        if (!has_value(ds, DCM_SOPClassUID))
            check(ds->putAndInsertString(DCM_SOPClassUID, sop_class), "SOPClassUID");
        if (!has_value(ds, DCM_PatientID)) {
            /* Orthanc generates a UUID-like PatientID */
            std::string u = new_uid(SITE_INSTANCE_UID_ROOT);
            check(ds->putAndInsertString(DCM_PatientID, u.substr(u.size() > 64 ? u.size() - 64 : 0).c_str()), "PatientID");
        }
        if (!has_value(ds, DCM_StudyInstanceUID))
            check(ds->putAndInsertString(DCM_StudyInstanceUID, new_uid(SITE_STUDY_UID_ROOT).c_str()), "StudyInstanceUID");
        if (!has_value(ds, DCM_SeriesInstanceUID))
            check(ds->putAndInsertString(DCM_SeriesInstanceUID, new_uid(SITE_SERIES_UID_ROOT).c_str()), "SeriesInstanceUID");
        if (!has_value(ds, DCM_SOPInstanceUID))
            check(ds->putAndInsertString(DCM_SOPInstanceUID, new_uid(SITE_INSTANCE_UID_ROOT).c_str()), "SOPInstanceUID");
        OFString sc, si;
        ds->findAndGetOFString(DCM_SOPClassUID, sc);
        ds->findAndGetOFString(DCM_SOPInstanceUID, si);
        DcmMetaInfo *meta = ff->getMetaInfo();
        meta->putAndInsertString(DCM_MediaStorageSOPClassUID, sc.c_str());
        meta->putAndInsertString(DCM_MediaStorageSOPInstanceUID, si.c_str());
        ds->chooseRepresentation(xfer, nullptr);
        ds->updateOriginalXfer();
        std::unique_ptr<DcmObject> obj(dcm_int_object_from(std::move(ff)));
        return dcm_write(err, obj.get(), nullptr, buf, len);
    } catch (const CreateError &ce) {
        return dcm_int_fail(err, ce.code, "%s", ce.msg.c_str());
    } catch (const DcmValueError &ve) {
        return dcm_int_fail(err, DCM_ERR_ARG, "%s", ve.msg.c_str());
    }
    DCM_CATCH(err, false)
}

} // namespace mp
