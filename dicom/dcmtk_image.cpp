/* dcmtk_image.cpp -- pixel data: frames decoded one at a time, rendering to 8 bits, PNG and
 * JPEG encoding, the raw frame as stored, encapsulated PDF.
 *
 * DESIGN: a DcmImageSource is a DcmFileFormat loaded from the stored file with a small
 * maxReadLength, so PixelData (or each fragment of encapsulated PixelData) stays on disk and
 * DCMTK reads only the frame asked for (getUncompressedFrame: native data through
 * getPartialValue, compressed frames through the registered codecs' decodeFrame: RLE from
 * dcmdata, JPEG from dcmjpeg, JPEG-LS from dcmjpls). DCMTK has no JPEG 2000 codec: the
 * fragments of one frame are handed to OpenJPEG here. Every decoded frame becomes one
 * canonical DcmFrame (interleaved samples, 1/2/4 bytes, sign-extended from BitsStored, colour
 * converted to RGB), which the renderer and the encoders take; none of them know syntaxes.
 * Limits: a frame above DCM_MAX_FRAME_BYTES decoded is refused; the declared frame count is
 * checked against the pixel data actually present (length, or fragment count).
 */
#include "dicom/dicom_int.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djcparam.h"
#include "dcmtk/dcmjpeg/djeijg8.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/dcmjpls/djencode.h"

#include <openjpeg.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

#define DCM_MAX_FRAME_BYTES ((size_t)1 << 30)

struct DcmImageSource {
    std::unique_ptr<DcmFileFormat> ff;
    DcmObject *obj = nullptr; /* buffer variant: the parsed object that owns the tree */
    DcmDataset *ds = nullptr;
    std::string ts;
    E_TransferSyntax xfer = EXS_Unknown;
    bool native = true;      /* PixelData not encapsulated */
    bool has_pixels = false;
    uint16_t rows = 0, cols = 0, spp = 1, ba = 0, bs = 0, hb = 0, pr = 0, planar = 0;
    std::string photometric;
    uint32_t frames = 0;
    size_t frame_bytes = 0;  /* one native frame */
    DcmPixelData *pixel = nullptr;
    std::string invalid;     /* why frames cannot be decoded (set at open) */
    bool unsupported = false; /* invalid is a 415, not a 400 */
};

namespace {

/* std::vector's allocator without the zeroing of resize(): pixel buffers that are overwritten
 * whole right away (hundreds of KB a preview) */
template <class T> struct NoInitAlloc : std::allocator<T> {
    template <class U> struct rebind {
        using other = NoInitAlloc<U>;
    };
    NoInitAlloc() = default;
    template <class U> NoInitAlloc(const NoInitAlloc<U> &) {}
    template <class U> void construct(U *p) noexcept { ::new (static_cast<void *>(p)) U; }
    template <class U, class... A> void construct(U *p, A &&...a) { ::new (static_cast<void *>(p)) U(std::forward<A>(a)...); }
};
using Bytes = std::vector<uint8_t, NoInitAlloc<uint8_t>>;

std::once_flag g_codecs_once;

void register_codecs()
{
    DcmRLEDecoderRegistration::registerCodecs();
    DcmRLEEncoderRegistration::registerCodecs();
    DJDecoderRegistration::registerCodecs(EDC_photometricInterpretation);
    DJEncoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DJLSEncoderRegistration::registerCodecs();
}

bool is_j2k(const std::string &ts)
{
    return ts == "1.2.840.10008.1.2.4.90" || ts == "1.2.840.10008.1.2.4.91" ||
           ts == "1.2.840.10008.1.2.4.201" || ts == "1.2.840.10008.1.2.4.202" ||
           ts == "1.2.840.10008.1.2.4.203";
}

/* Transfer syntaxes whose frames DCMTK's registered codecs decode. */
bool dcmtk_decodes(const std::string &ts)
{
    static const char *const known[] = {
        "1.2.840.10008.1.2.5",    /* RLE */
        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.53",
        "1.2.840.10008.1.2.4.55", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
    };
    for (const char *k : known)
        if (ts == k) return true;
    return false;
}

uint16_t get_us(DcmItem *ds, const DcmTagKey &k, uint16_t def)
{
    Uint16 v;
    return ds->findAndGetUint16(k, v).good() ? v : def;
}

double get_ds(DcmItem *ds, const DcmTagKey &k, double def, bool *found = nullptr)
{
    Float64 v;
    bool ok = ds->findAndGetFloat64(k, v, 0).good() && std::isfinite(v);
    if (found) *found = ok;
    return ok ? v : def;
}

/* Reads the image description and checks it. */
void describe(DcmImageSource *s)
{
    DcmDataset *ds = s->ds;
    s->rows = get_us(ds, DCM_Rows, 0);
    s->cols = get_us(ds, DCM_Columns, 0);
    s->spp = get_us(ds, DCM_SamplesPerPixel, 1);
    s->ba = get_us(ds, DCM_BitsAllocated, 0);
    s->bs = get_us(ds, DCM_BitsStored, s->ba);
    s->hb = get_us(ds, DCM_HighBit, s->bs ? s->bs - 1 : 0);
    s->pr = get_us(ds, DCM_PixelRepresentation, 0);
    s->planar = get_us(ds, DCM_PlanarConfiguration, 0);
    OFString pi;
    if (ds->findAndGetOFString(DCM_PhotometricInterpretation, pi).good()) s->photometric = pi.c_str();
    else s->photometric = s->spp == 3 ? "RGB" : "MONOCHROME2";
    Sint32 nf = 1;
    OFString nfs;
    if (ds->findAndGetOFString(DCM_NumberOfFrames, nfs).good() && !nfs.empty()) {
        char *end = nullptr;
        long v = strtol(nfs.c_str(), &end, 10);
        nf = (end && *end == '\0' && v >= 0 && v <= INT32_MAX) ? (Sint32)v : -1;
    }
    DcmElement *e = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e) {
        s->invalid = "the instance has no pixel data";
        return;
    }
    /* A PixelData tag written with another VR (OV, UN...) is parsed by DCMTK into another class:
     * never take it for pixel data. */
    s->pixel = dynamic_cast<DcmPixelData *>(e);
    if (!s->pixel) {
        s->invalid = std::string("PixelData has VR ") + DcmVR(e->getVR()).getVRName();
        return;
    }
    s->has_pixels = true;
    s->native = !DcmXfer(s->xfer).isEncapsulated();
    if (!s->native) {
        DcmPixelSequence *seq = nullptr;
        E_TransferSyntax x = EXS_Unknown;
        const DcmRepresentationParameter *p = nullptr;
        s->pixel->getOriginalRepresentationKey(x, p);
        if (s->pixel->getEncapsulatedRepresentation(x, p, seq).bad() || !seq)
            s->native = true; /* an encapsulated syntax with native pixels (seen in the wild) */
    }
    if (nf < 0) {
        s->invalid = "NumberOfFrames is not a valid number";
        return;
    }
    if (s->rows == 0 || s->cols == 0) {
        s->invalid = "Rows or Columns is zero or missing";
        return;
    }
    if (s->spp != 1 && s->spp != 3) {
        s->unsupported = true;
        s->invalid = "SamplesPerPixel " + std::to_string(s->spp) + " is not supported";
        return;
    }
    if (s->ba == 1 && s->native && s->spp == 1 && s->bs == 1) {
        /* bit-packed (segmentations, overlays as images): frames need not start on a byte */
        uint64_t bits = (uint64_t)s->rows * s->cols;
        uint64_t need = (bits * (uint64_t)(nf ? nf : 1) + 7) / 8;
        if (need > e->getLength()) {
            s->invalid = "PixelData holds " + std::to_string(e->getLength()) + " bytes, " +
                         std::to_string(nf ? nf : 1) + " 1-bit frame(s) need " + std::to_string(need);
            return;
        }
        s->frame_bytes = (size_t)bits; /* decoded: one byte per pixel */
        s->frames = nf ? (uint32_t)nf : 1;
        return;
    }
    if (s->ba != 8 && s->ba != 16 && s->ba != 32) {
        s->unsupported = true;
        s->invalid = "BitsAllocated " + std::to_string(s->ba) + " is not supported";
        return;
    }
    if (s->bs == 0 || s->bs > s->ba || s->hb >= s->ba || s->hb + 1 < s->bs) {
        s->invalid = "BitsStored/HighBit are inconsistent with BitsAllocated";
        return;
    }
    s->frame_bytes = (size_t)s->rows * s->cols * s->spp * (s->ba / 8);
    if (s->native && s->spp == 3 && s->photometric == "YBR_FULL_422") {
        if (s->cols % 2 || s->ba != 8) {
            s->unsupported = true;
            s->invalid = "native YBR_FULL_422 needs an even number of columns and 8 bits";
            return;
        }
        s->frame_bytes = (size_t)s->rows * s->cols * 2; /* Y Y Cb Cr per pair of pixels */
    }
    if (s->frame_bytes > DCM_MAX_FRAME_BYTES) {
        s->unsupported = true;
        s->invalid = "a frame of " + std::to_string(s->frame_bytes) + " bytes is above the limit";
        return;
    }
    if (s->native) {
        Uint32 len = e->getLength();
        uint64_t need = (uint64_t)s->frame_bytes * (uint64_t)(nf ? nf : 1);
        if (need > len) {
            s->invalid = "PixelData holds " + std::to_string(len) + " bytes, " +
                         std::to_string(nf ? nf : 1) + " frame(s) need " + std::to_string(need);
            return;
        }
    } else {
        DcmPixelSequence *seq = nullptr;
        E_TransferSyntax x = EXS_Unknown;
        const DcmRepresentationParameter *p = nullptr;
        s->pixel->getOriginalRepresentationKey(x, p);
        s->pixel->getEncapsulatedRepresentation(x, p, seq);
        unsigned long items = seq ? seq->card() : 0;
        if (items < 2) {
            s->invalid = "encapsulated PixelData has no fragment";
            return;
        }
        if ((unsigned long)(nf ? nf : 1) > items - 1) {
            s->invalid = "NumberOfFrames " + std::to_string(nf) + " exceeds the " +
                         std::to_string(items - 1) + " fragment(s) present";
            return;
        }
        if (!is_j2k(s->ts) && !dcmtk_decodes(s->ts)) {
            s->unsupported = true;
            s->invalid = "decoding transfer syntax " + s->ts + " (" +
                         DcmXfer(s->ts.c_str()).getXferName() + ") is not supported";
        }
    }
    s->frames = nf ? (uint32_t)nf : 1;
}

bool fail_invalid(DcmError *err, const DcmImageSource *s)
{
    return dcm_int_fail(err, s->unsupported ? DCM_ERR_UNSUPPORTED : DCM_ERR_FORMAT, "%s",
                        s->invalid.c_str());
}

/* Fragments of frame n (encapsulated): from the basic offset table when present, else one
 * fragment per frame when counts agree, else all fragments for a single frame. */
bool frame_fragments(DcmError *err, DcmImageSource *s, uint32_t n, std::vector<DcmPixelItem *> &out)
{
    DcmPixelSequence *seq = nullptr;
    E_TransferSyntax x = EXS_Unknown;
    const DcmRepresentationParameter *p = nullptr;
    s->pixel->getOriginalRepresentationKey(x, p);
    if (s->pixel->getEncapsulatedRepresentation(x, p, seq).bad() || !seq)
        return dcm_int_fail(err, DCM_ERR_FORMAT, "encapsulated PixelData cannot be read");
    unsigned long items = seq->card();
    std::vector<DcmPixelItem *> frags;
    for (unsigned long i = 1; i < items; i++) {
        DcmPixelItem *it = nullptr;
        if (seq->getItem(it, i).bad() || !it) return dcm_int_fail(err, DCM_ERR_FORMAT, "bad fragment %lu", i);
        frags.push_back(it);
    }
    if (s->frames == 1) {
        out = frags;
        return true;
    }
    if (frags.size() == s->frames) {
        out.push_back(frags[n]);
        return true;
    }
    /* offset table: byte offsets of each frame's first fragment (item header included) */
    DcmPixelItem *bot = nullptr;
    seq->getItem(bot, 0);
    Uint32 botlen = bot ? bot->getLength() : 0;
    if (botlen < 4 * (Uint32)s->frames)
        return dcm_int_fail(err, DCM_ERR_FORMAT, "%u frames in %zu fragments and no offset table",
                            s->frames, frags.size());
    std::vector<uint32_t> offs(s->frames);
    Uint8 *b = nullptr;
    if (bot->getUint8Array(b).bad() || !b) return dcm_int_fail(err, DCM_ERR_FORMAT, "bad offset table");
    for (uint32_t i = 0; i < s->frames; i++)
        offs[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                  (uint32_t)b[4 * i + 3] << 24;
    uint64_t pos = 0;
    uint64_t start = offs[n], end = n + 1 < s->frames ? offs[n + 1] : UINT64_MAX;
    for (DcmPixelItem *f : frags) {
        if (pos >= start && pos < end) out.push_back(f);
        pos += 8 + (uint64_t)f->getLength();
    }
    if (out.empty()) return dcm_int_fail(err, DCM_ERR_FORMAT, "offset table points outside the fragments");
    return true;
}

bool frame_compressed_bytes(DcmError *err, DcmImageSource *s, uint32_t n, std::vector<uint8_t> &out)
{
    std::vector<DcmPixelItem *> frags;
    if (!frame_fragments(err, s, n, frags)) return false;
    size_t total = 0;
    for (DcmPixelItem *f : frags) total += f->getLength();
    if (total > DCM_MAX_FRAME_BYTES) return dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "compressed frame too large");
    out.resize(total);
    size_t pos = 0;
    for (DcmPixelItem *f : frags) {
        Uint32 l = f->getLength();
        if (l && f->getPartialValue(out.data() + pos, 0, l).bad())
            return dcm_int_fail(err, DCM_ERR_FORMAT, "a fragment cannot be read");
        pos += l;
    }
    return true;
}

/* ---- OpenJPEG ---- */
/* 64x64 tiles of a 4096x4096 image; DICOM's JPEG 2000 frames have one tile as a rule. */
enum { J2K_MAX_TILES = 4096 };

struct MemStream {
    const uint8_t *p;
    size_t len, pos;
};
OPJ_SIZE_T ms_read(void *buf, OPJ_SIZE_T n, void *u)
{
    MemStream *m = static_cast<MemStream *>(u);
    if (m->pos >= m->len) return (OPJ_SIZE_T)-1;
    size_t k = std::min((size_t)n, m->len - m->pos);
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return k;
}
OPJ_OFF_T ms_skip(OPJ_OFF_T n, void *u)
{
    MemStream *m = static_cast<MemStream *>(u);
    if (n < 0) return -1;
    size_t k = std::min((size_t)n, m->len - m->pos);
    m->pos += k;
    return (OPJ_OFF_T)k;
}
OPJ_BOOL ms_seek(OPJ_OFF_T n, void *u)
{
    MemStream *m = static_cast<MemStream *>(u);
    if (n < 0 || (size_t)n > m->len) return OPJ_FALSE;
    m->pos = (size_t)n;
    return OPJ_TRUE;
}
void opj_quiet(const char *, void *) {}

uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* The tile count OpenJPEG's opj_read_header() allocates for, found in the SIZ marker segment
 * (ITU-T T.800 A.5.1) that follows SOC at the start of the codestream; for JP2, the codestream
 * is the jp2c box (T.800 I.5.4). OpenJPEG allocates several KB per tile before it can be asked
 * anything: a 3 KB frame declaring 65,529 tiles made it calloc hundreds of MB and spend 10 s
 * (found by fuzz_preview). The sizes themselves are checked against the DICOM header after
 * opj_read_header(); the component count (Csiz) too, since OpenJPEG allocates per tile and
 * component. false: no SIZ where it must be. */
bool j2k_tiles(const uint8_t *p, size_t n, bool jp2, uint64_t *tiles, unsigned *comps)
{
    if (jp2) { /* boxes: length, type; length 1: a 64-bit length follows; 0: to the end */
        size_t at = 0;
        for (;;) {
            if (n - at < 8) return false;
            uint64_t len = be32(p + at), head = 8;
            if (len == 1) {
                if (n - at < 16) return false;
                len = (uint64_t)be32(p + at + 8) << 32 | be32(p + at + 12);
                head = 16;
            } else if (len == 0) {
                len = n - at;
            }
            if (len < head || len > n - at) return false;
            if (memcmp(p + at + 4, "jp2c", 4) == 0) {
                p += at + head;
                n = (size_t)(len - head);
                break;
            }
            at += (size_t)len;
        }
    }
    /* SOC, SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz */
    if (n < 4 + 38 || p[0] != 0xFF || p[1] != 0x4F || p[2] != 0xFF || p[3] != 0x51) return false;
    const uint8_t *z = p + 4;
    uint32_t x = be32(z + 4), y = be32(z + 8), xo = be32(z + 12), yo = be32(z + 16);
    uint32_t xt = be32(z + 20), yt = be32(z + 24), xto = be32(z + 28), yto = be32(z + 32);
    if (xt == 0 || yt == 0 || x <= xto || y <= yto || xo >= x || yo >= y) return false;
    *tiles = ((uint64_t)(x - xto) + xt - 1) / xt * (((uint64_t)(y - yto) + yt - 1) / yt);
    *comps = (unsigned)z[36] << 8 | z[37];
    return true;
}

/* Decodes a J2K/JP2 codestream into frame (samples interleaved, bytes per sample from ba). */
bool decode_j2k(DcmError *err, const DcmImageSource *s, const std::vector<uint8_t> &bytes, Bytes &px)
{
    if (bytes.size() < 12) return dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 frame too short");
    static const uint8_t jp2sig[] = { 0, 0, 0, 0x0c, 'j', 'P', ' ', ' ' };
    OPJ_CODEC_FORMAT fmt = memcmp(bytes.data(), jp2sig, 8) == 0 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K;
    uint64_t tiles = 0;
    unsigned comps = 0;
    if (!j2k_tiles(bytes.data(), bytes.size(), fmt == OPJ_CODEC_JP2, &tiles, &comps))
        return dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 frame without a valid SIZ marker segment");
    if (comps != s->spp)
        return dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 frame of %u components, the header says %u",
                            comps, (unsigned)s->spp);
    if (tiles > J2K_MAX_TILES)
        return dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 frame of %llu tiles (at most %d)",
                            (unsigned long long)tiles, J2K_MAX_TILES);
    opj_codec_t *codec = opj_create_decompress(fmt);
    opj_image_t *img = nullptr;
    MemStream m{ bytes.data(), bytes.size(), 0 };
    opj_stream_t *st = opj_stream_create(64 * 1024, OPJ_TRUE);
    bool ok = false;
    if (!codec || !st) {
        dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory (OpenJPEG)");
        goto out;
    }
    opj_set_error_handler(codec, opj_quiet, nullptr);
    opj_set_warning_handler(codec, opj_quiet, nullptr);
    opj_set_info_handler(codec, opj_quiet, nullptr);
    opj_stream_set_user_data(st, &m, nullptr);
    opj_stream_set_user_data_length(st, bytes.size());
    opj_stream_set_read_function(st, ms_read);
    opj_stream_set_skip_function(st, ms_skip);
    opj_stream_set_seek_function(st, ms_seek);
    {
        opj_dparameters_t par;
        opj_set_default_decoder_parameters(&par);
        if (!opj_setup_decoder(codec, &par) || !opj_read_header(st, codec, &img) || !img) {
            dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 header cannot be read");
            goto out;
        }
        if (img->numcomps != s->spp || img->x1 - img->x0 != s->cols || img->y1 - img->y0 != s->rows) {
            dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 image is %ux%u with %u components, the header says %ux%u with %u",
                         img->x1 - img->x0, img->y1 - img->y0, img->numcomps, s->cols, s->rows, s->spp);
            goto out;
        }
        if (!opj_decode(codec, st, img) || !opj_end_decompress(codec, st)) {
            dcm_int_fail(err, DCM_ERR_FORMAT, "JPEG 2000 frame cannot be decoded");
            goto out;
        }
        for (unsigned c = 0; c < img->numcomps; c++)
            if (!img->comps[c].data || img->comps[c].w != s->cols || img->comps[c].h != s->rows) {
                dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "subsampled JPEG 2000 components are not supported");
                goto out;
            }
        size_t npix = (size_t)s->rows * s->cols, bps = s->ba / 8;
        px.assign(s->frame_bytes, 0);
        for (size_t i = 0; i < npix; i++)
            for (unsigned c = 0; c < s->spp; c++) {
                uint32_t v = (uint32_t)img->comps[c].data[i];
                uint8_t *d = px.data() + (i * s->spp + c) * bps;
                memcpy(d, &v, bps); /* little-endian host: the low bytes */
            }
        ok = true;
    }
out:
    if (img) opj_image_destroy(img);
    if (st) opj_stream_destroy(st);
    if (codec) opj_destroy_codec(codec);
    return ok;
}

/* Raw (decoded) frame bytes, native byte order, plus the colour model they are in and the
 * planar configuration. */
bool frame_bytes(DcmError *err, DcmImageSource *s, uint32_t n, Bytes &px, std::string &color,
                 uint16_t &planar)
{
    planar = s->planar;
    color = s->photometric;
    if (!s->native && is_j2k(s->ts)) {
        std::vector<uint8_t> bytes;
        if (!frame_compressed_bytes(err, s, n, bytes) || !decode_j2k(err, s, bytes, px)) return false;
        planar = 0;
        if (color == "YBR_ICT" || color == "YBR_RCT") color = "RGB"; /* OpenJPEG undoes the MCT */
        return true;
    }
    /* DCMTK wants an even buffer. Native frames are read whole (or fail): no need to zero
     * them first; a decoder's output is zeroed so that a short one never sends old heap bytes */
    if (s->native) px.resize(s->frame_bytes + (s->frame_bytes & 1));
    else px.assign(s->frame_bytes + (s->frame_bytes & 1), 0);
    Uint32 start = 0;
    OFString model;
    OFCondition c;
    if (s->native && s->ba == 1) {
        uint64_t bits = (uint64_t)s->rows * s->cols, first = bits * n;
        uint64_t b0 = first / 8, b1 = (first + bits + 7) / 8;
        std::vector<uint8_t> packed((size_t)(b1 - b0));
        c = s->pixel->getPartialValue(packed.data(), (Uint32)b0, (Uint32)(b1 - b0));
        if (c.good())
            for (uint64_t i = 0; i < bits; i++) {
                uint64_t bit = first + i - b0 * 8;
                px[i] = (packed[bit / 8] >> (bit % 8)) & 1;
            }
    } else if (s->native) {
        c = s->pixel->getPartialValue(px.data(), (Uint32)(n * s->frame_bytes), (Uint32)s->frame_bytes);
        if (c.good() && DcmXfer(s->xfer).isBigEndian() && s->ba > 8) {
            /* DCMTK swapped OW by 16-bit words (OB not at all): finish to little endian */
            bool ow = s->pixel->getVR() != EVR_OB;
            unsigned w = s->ba / 8;
            for (size_t i = 0; i + w <= s->frame_bytes; i += w) {
                uint8_t *q = px.data() + i;
                if (w == 4 && ow) std::swap(q[0], q[2]), std::swap(q[1], q[3]);
                else if (w == 4) std::swap(q[0], q[3]), std::swap(q[1], q[2]);
                else if (!ow) std::swap(q[0], q[1]);
            }
        }
    } else {
        /* find the first fragment of frame n: DCMTK walks from the one we give */
        c = s->pixel->getUncompressedFrame(s->ds, n, start, px.data(), (Uint32)px.size(), model);
        if (c.good()) {
            if (!model.empty()) color = model.c_str();
            planar = get_us(s->ds, DCM_PlanarConfiguration, 0);
        }
    }
    if (c.bad())
        return dcm_int_fail(err, DCM_ERR_FORMAT, "frame %u cannot be decoded: %s", n, c.text());
    px.resize(s->frame_bytes);
    if (s->native && s->spp == 3 && s->photometric == "YBR_FULL_422") {
        /* 4:2:2 as stored: Y1 Y2 Cb Cr for each pair of pixels -> YBR_FULL interleaved */
        size_t pairs = (size_t)s->rows * s->cols / 2;
        Bytes full((size_t)s->rows * s->cols * 3);
        for (size_t i = 0; i < pairs; i++) {
            const uint8_t *q = px.data() + i * 4;
            uint8_t *d = full.data() + i * 6;
            d[0] = q[0], d[1] = q[2], d[2] = q[3];
            d[3] = q[1], d[4] = q[2], d[5] = q[3];
        }
        px.swap(full);
        planar = 0;
    }
    return true;
}

inline int clamp255(double v) { return v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5); }

/* Fills out from raw bytes: masks/sign-extends to bits stored, interleaves, converts colour. */
bool canonical(DcmError *err, const DcmImageSource *s, Bytes &px, const std::string &color,
               uint16_t planar, DcmFrame *out)
{
    size_t npix = (size_t)s->rows * s->cols;
    unsigned bps = s->ba == 1 ? 1 : s->ba / 8;
    unsigned spp = s->spp;
    bool is_signed = s->pr == 1;
    unsigned shift = s->ba == 1 ? 0 : s->hb + 1 - s->bs;
    /* normalize samples in place: value bits at [0, bs), sign-extended (one loop per sample
     * size: this runs on every pixel of every preview) */
    size_t ns = npix * spp;
    if (bps == 2 && s->bs <= 16) {
        uint16_t *q = reinterpret_cast<uint16_t *>(px.data()); /* vector storage: aligned */
        const uint16_t mask = (uint16_t)(s->bs >= 16 ? 0xffffu : ((1u << s->bs) - 1));
        const uint16_t sign = (uint16_t)(1u << (s->bs ? s->bs - 1 : 0));
        if (shift || mask != 0xffffu) {
            if (is_signed)
                for (size_t i = 0; i < ns; i++) {
                    uint16_t v = (uint16_t)((q[i] >> shift) & mask);
                    q[i] = (v & sign) ? (uint16_t)(v | ~mask) : v;
                }
            else
                for (size_t i = 0; i < ns; i++) q[i] = (uint16_t)((q[i] >> shift) & mask);
        }
    } else if (bps == 1 && s->bs <= 8) {
        uint8_t *q = px.data();
        const uint8_t mask = (uint8_t)(s->bs >= 8 ? 0xffu : ((1u << s->bs) - 1));
        const uint8_t sign = (uint8_t)(1u << (s->bs ? s->bs - 1 : 0));
        if (shift || mask != 0xffu)
            for (size_t i = 0; i < ns; i++) {
                uint8_t v = (uint8_t)((q[i] >> shift) & mask);
                q[i] = (is_signed && (v & sign)) ? (uint8_t)(v | ~mask) : v;
            }
    } else {
        for (size_t i = 0; i < ns; i++) {
            uint8_t *p = px.data() + i * bps;
            uint32_t v = 0;
            memcpy(&v, p, bps);
            v >>= shift;
            if (s->bs < 32) {
                uint32_t mask = (1u << s->bs) - 1;
                v &= mask;
                if (is_signed && (v & (1u << (s->bs - 1)))) v |= ~mask;
            }
            memcpy(p, &v, bps);
        }
    }
    Bytes tmp;
    if (spp == 3 && planar == 1) {
        tmp.resize(px.size());
        for (size_t i = 0; i < npix; i++)
            for (unsigned c = 0; c < 3; c++)
                memcpy(tmp.data() + (i * 3 + c) * bps, px.data() + (c * npix + i) * bps, bps);
        px.swap(tmp);
    }
    if (spp == 3 && bps == 1 && (color == "YBR_FULL" || color == "YBR_FULL_422")) {
        for (size_t i = 0; i < npix; i++) {
            uint8_t *p = px.data() + i * 3;
            double y = p[0], cb = p[1] - 128.0, cr = p[2] - 128.0;
            p[0] = (uint8_t)clamp255(y + 1.402 * cr);
            p[1] = (uint8_t)clamp255(y - 0.344136 * cb - 0.714136 * cr);
            p[2] = (uint8_t)clamp255(y + 1.772 * cb);
        }
    } else if (spp == 3 && color != "RGB" && color != "YBR_ICT" && color != "YBR_RCT") {
        return dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "photometric interpretation %s with %u bits is not supported",
                            color.c_str(), s->ba);
    }
    memset(out, 0, sizeof *out);
    out->width = s->cols;
    out->height = s->rows;
    out->channels = spp;
    out->bytes = bps;
    out->is_signed = is_signed;
    out->bits_stored = s->bs;
    out->monochrome1 = color == "MONOCHROME1";
    out->len = px.size();
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    memcpy(out->data, px.data(), out->len);
    return true;
}

/* PALETTE COLOR: looks values up in the three LUTs; output RGB 8 bits (LUT entries of 16 bits
 * keep their high byte, as viewers show them). */
bool apply_palette(DcmError *err, DcmImageSource *s, DcmFrame *f)
{
    const DcmTagKey desc[3] = { DCM_RedPaletteColorLookupTableDescriptor,
                                DCM_GreenPaletteColorLookupTableDescriptor,
                                DCM_BluePaletteColorLookupTableDescriptor };
    const DcmTagKey data[3] = { DCM_RedPaletteColorLookupTableData, DCM_GreenPaletteColorLookupTableData,
                                DCM_BluePaletteColorLookupTableData };
    std::vector<uint16_t> lut[3];
    long first[3];
    unsigned bits[3];
    for (int c = 0; c < 3; c++) {
        Uint16 n = 0, b = 0;
        Uint16 fm = 0;
        if (s->ds->findAndGetUint16(desc[c], n, 0).bad() || s->ds->findAndGetUint16(desc[c], fm, 1).bad() ||
            s->ds->findAndGetUint16(desc[c], b, 2).bad())
            return dcm_int_fail(err, DCM_ERR_FORMAT, "PALETTE COLOR without a valid LUT descriptor");
        size_t entries = n ? n : 65536;
        first[c] = s->pr ? (Sint16)fm : fm;
        bits[c] = b;
        DcmElement *e = nullptr;
        if (s->ds->findAndGetElement(data[c], e).bad() || !e)
            return dcm_int_fail(err, DCM_ERR_FORMAT, "PALETTE COLOR without LUT data");
        Uint32 len = e->getLength();
        lut[c].assign(entries, 0);
        if (b > 8 || len >= entries * 2) {
            if (len < entries * 2) return dcm_int_fail(err, DCM_ERR_FORMAT, "palette LUT data too short");
            Uint16 *w = nullptr;
            if (e->getUint16Array(w).bad() || !w) return dcm_int_fail(err, DCM_ERR_FORMAT, "palette LUT unreadable");
            for (size_t i = 0; i < entries; i++) lut[c][i] = w[i];
        } else {
            Uint8 *w = nullptr;
            if (len < entries || e->getUint8Array(w).bad() || !w)
                return dcm_int_fail(err, DCM_ERR_FORMAT, "palette LUT data too short");
            for (size_t i = 0; i < entries; i++) lut[c][i] = w[i];
        }
    }
    size_t npix = (size_t)f->width * f->height;
    uint8_t *rgb = static_cast<uint8_t *>(malloc(npix * 3));
    if (!rgb) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < npix; i++) {
        int64_t v = dcm_frame_sample(f, i, 0);
        for (int c = 0; c < 3; c++) {
            int64_t k = v - first[c];
            k = k < 0 ? 0 : k >= (int64_t)lut[c].size() ? (int64_t)lut[c].size() - 1 : k;
            uint16_t e = lut[c][k];
            rgb[i * 3 + c] = (uint8_t)(bits[c] > 8 ? e >> 8 : e);
        }
    }
    free(f->data);
    f->data = rgb;
    f->len = npix * 3;
    f->channels = 3;
    f->bytes = 1;
    f->is_signed = false;
    f->bits_stored = 8;
    return true;
}

/* PNG writing into a growable malloc'd buffer (handed over to the caller as it is) */
struct PngOut {
    uint8_t *p = nullptr;
    size_t len = 0, cap = 0;
    bool nomem = false;
    ~PngOut() { free(p); }
};
void png_write_cb(png_structp png, png_bytep data, png_size_t n)
{
    PngOut *o = static_cast<PngOut *>(png_get_io_ptr(png));
    if (o->len + n > o->cap) {
        size_t cap = std::max(o->cap * 2, o->len + n);
        uint8_t *q = static_cast<uint8_t *>(realloc(o->p, cap));
        if (!q) {
            o->nomem = true;
            png_error(png, "out of memory");
        }
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->len, data, n);
    o->len += n;
}
void png_flush_cb(png_structp) {}
void png_err_cb(png_structp png, png_const_charp) { png_longjmp(png, 1); }
void png_warn_cb(png_structp, png_const_charp) {}

/* libpng longjmps: keep C++ objects with destructors out of this function's frame. */
bool png_encode_rows(const DcmFrame *f, PngOut *o, const uint8_t *const *rows)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_err_cb, png_warn_cb);
    if (!png) return false;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, nullptr);
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_set_write_fn(png, o, png_write_cb, png_flush_cb);
    /* previews: speed over size. One filter (Sub) instead of libpng's adaptive choice, which
     * filters every row five ways; zlib's fastest level */
    png_set_compression_level(png, 1);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
    png_set_IHDR(png, info, f->width, f->height, f->bytes * 8, f->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (f->bytes == 2) png_set_swap(png); /* PNG is big endian, our samples are native */
    for (uint32_t y = 0; y < f->height; y++) png_write_row(png, (png_bytep)rows[y]);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return true;
}

} // namespace

/* ---- C API ---------------------------------------------------------------------------- */

void dcm_int_image_init() { std::call_once(g_codecs_once, register_codecs); }

extern "C" int64_t dcm_frame_sample(const DcmFrame *f, size_t pixel, unsigned channel)
{
    size_t i = pixel * f->channels + channel;
    const uint8_t *p = static_cast<const uint8_t *>(f->data) + i * f->bytes;
    switch (f->bytes) {
    case 1: return f->is_signed ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return f->is_signed ? (int64_t)(int16_t)v : (int64_t)v;
    }
    default: {
        uint32_t v;
        memcpy(&v, p, 4);
        return f->is_signed ? (int64_t)(int32_t)v : (int64_t)v;
    }
    }
}

static bool finish_open(DcmError *err, DcmImageSource *s)
{
    DcmXfer x(s->xfer);
    s->ts = x.getXferID();
    describe(s);
    (void)err;
    return true;
}

extern "C" bool dcm_image_open_file(DcmError *err, const char *path, DcmImageSource **out)
{
    try {
        dcm_int_image_init();
        *out = nullptr;
        std::unique_ptr<DcmImageSource> s(new DcmImageSource);
        s->ff.reset(new DcmFileFormat);
        OFCondition c = s->ff->loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
        if (c.bad()) return dcm_int_fail(err, DCM_ERR_FORMAT, "stored file cannot be read: %s", c.text());
        s->ds = s->ff->getDataset();
        s->xfer = s->ds->getOriginalXfer();
        if (s->xfer == EXS_Unknown) s->xfer = EXS_LittleEndianImplicit;
        if (!finish_open(err, s.get())) return false;
        *out = s.release();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_image_open_buffer(DcmError *err, const void *buf, size_t len, DcmImageSource **out)
{
    try {
        dcm_int_image_init();
        *out = nullptr;
        DcmObject *obj = nullptr;
        if (!dcm_parse(err, buf, len, 0, &obj)) return false;
        std::unique_ptr<DcmImageSource> s(new DcmImageSource);
        s->obj = obj;
        s->ds = obj->ff->getDataset();
        s->xfer = s->ds->getOriginalXfer();
        if (s->xfer == EXS_Unknown) s->xfer = EXS_LittleEndianImplicit;
        if (!finish_open(err, s.get())) {
            dcm_object_destroy(obj);
            s->obj = nullptr;
            return false;
        }
        *out = s.release();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_image_close(DcmImageSource *s)
{
    try {
        if (!s) return;
        if (s->obj) dcm_object_destroy(s->obj);
        delete s;
    } catch (...) {
    }
}

extern "C" bool dcm_image_info(DcmError *err, const DcmImageSource *s, DcmImageInfo *info)
{
    memset(info, 0, sizeof *info);
    if (!s->invalid.empty()) return fail_invalid(err, s);
    info->width = s->cols;
    info->height = s->rows;
    info->frames = s->frames;
    info->samples = s->spp;
    info->bits_allocated = s->ba;
    info->bits_stored = s->bs;
    info->is_signed = s->pr == 1;
    snprintf(info->photometric, sizeof info->photometric, "%s", s->photometric.c_str());
    snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", s->ts.c_str());
    info->compressed = !s->native;
    bool f = false;
    info->slope = get_ds(s->ds, DCM_RescaleSlope, 1.0, &f);
    if (!f || info->slope == 0) info->slope = 1.0;
    info->intercept = get_ds(s->ds, DCM_RescaleIntercept, 0.0);
    bool fc = false, fw = false;
    info->window_center = get_ds(s->ds, DCM_WindowCenter, 0, &fc);
    info->window_width = get_ds(s->ds, DCM_WindowWidth, 0, &fw);
    info->has_window = fc && fw && info->window_width > 0;
    return true;
}

extern "C" bool dcm_image_frame(DcmError *err, DcmImageSource *s, uint32_t n, DcmFrame *out)
{
    try {
        memset(out, 0, sizeof *out);
        if (!s->invalid.empty()) return fail_invalid(err, s);
        if (n >= s->frames) return dcm_int_fail(err, DCM_ERR_MISSING, "frame %u does not exist (%u frames)", n, s->frames);
        Bytes px;
        std::string color;
        uint16_t planar = 0;
        if (!frame_bytes(err, s, n, px, color, planar)) return false;
        if (!canonical(err, s, px, color, planar, out)) return false;
        if (s->spp == 1 && s->photometric == "PALETTE COLOR" && !apply_palette(err, s, out)) {
            dcm_frame_cleanup(out);
            return false;
        }
        if (s->spp == 1 && s->photometric != "MONOCHROME1" && s->photometric != "MONOCHROME2" &&
            s->photometric != "PALETTE COLOR") {
            dcm_frame_cleanup(out);
            return dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "photometric interpretation %s is not supported",
                                s->photometric.c_str());
        }
        return true;
    } catch (const std::bad_alloc &) {
        dcm_frame_cleanup(out);
        return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
    } catch (...) {
        dcm_frame_cleanup(out);
        return dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error while decoding");
    }
}

extern "C" bool dcm_image_frame_raw(DcmError *err, DcmImageSource *s, uint32_t n, void **buf, size_t *len,
                                    const char **mime)
{
    try {
        *buf = nullptr;
        *len = 0;
        *mime = "application/octet-stream";
        if (!s->has_pixels) return dcm_int_fail(err, DCM_ERR_FORMAT, "the instance has no pixel data");
        if (!s->invalid.empty() && !s->unsupported) return fail_invalid(err, s);
        uint32_t frames = s->frames ? s->frames : 1;
        if (n >= frames) return dcm_int_fail(err, DCM_ERR_MISSING, "frame %u does not exist (%u frames)", n, frames);
        std::vector<uint8_t> v;
        if (s->native && s->ba == 1) {
            uint64_t bits = (uint64_t)s->rows * s->cols, b0 = bits * n / 8, b1 = (bits * (n + 1) + 7) / 8;
            v.resize((size_t)(b1 - b0));
            if (s->pixel->getPartialValue(v.data(), (Uint32)b0, (Uint32)(b1 - b0)).bad())
                return dcm_int_fail(err, DCM_ERR_FORMAT, "frame %u cannot be read", n);
        } else if (s->native) {
            if (!s->frame_bytes) return fail_invalid(err, s);
            v.resize(s->frame_bytes);
            if (s->pixel->getPartialValue(v.data(), (Uint32)(n * s->frame_bytes), (Uint32)s->frame_bytes).bad())
                return dcm_int_fail(err, DCM_ERR_FORMAT, "frame %u cannot be read", n);
        } else {
            if (!frame_compressed_bytes(err, s, n, v)) return false;
            if (is_j2k(s->ts)) *mime = "image/jp2";
            else if (s->ts.rfind("1.2.840.10008.1.2.4.8", 0) == 0) *mime = "image/jls";
            else if (s->ts.rfind("1.2.840.10008.1.2.4.", 0) == 0) *mime = "image/jpeg";
        }
        *buf = malloc(v.size() ? v.size() : 1);
        if (!*buf) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
        memcpy(*buf, v.data(), v.size());
        *len = v.size();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_image_pdf(DcmError *err, DcmImageSource *s, void **buf, size_t *len)
{
    try {
        *buf = nullptr;
        *len = 0;
        OFString mime;
        DcmElement *e = nullptr;
        if (s->ds->findAndGetOFString(DCM_MIMETypeOfEncapsulatedDocument, mime).bad() || mime != "application/pdf" ||
            s->ds->findAndGetElement(DCM_EncapsulatedDocument, e).bad() || !e)
            return dcm_int_fail(err, DCM_ERR_MISSING, "the instance is not an encapsulated PDF");
        Uint32 l = e->getLength();
        *buf = malloc(l ? l : 1);
        if (!*buf) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
        if (l && e->getPartialValue(*buf, 0, l).bad()) {
            free(*buf);
            *buf = nullptr;
            return dcm_int_fail(err, DCM_ERR_FORMAT, "EncapsulatedDocument cannot be read");
        }
        /* the value is padded to an even length: drop the pad after %%EOF */
        const char *c = static_cast<const char *>(*buf);
        while (l > 0 && c[l - 1] == '\0') l--;
        *len = l;
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_frame_cleanup(DcmFrame *f)
{
    if (!f) return;
    free(f->data);
    memset(f, 0, sizeof *f);
}

/* ---- rendering ---- */

namespace {

/* Calls fn(T *samples, n) with the frame's samples typed by size and sign. */
template <class Fn> void with_samples(const DcmFrame *f, Fn fn)
{
    size_t n = (size_t)f->width * f->height * f->channels;
    const void *d = f->data;
    switch (f->bytes) {
    case 1: f->is_signed ? fn(static_cast<const int8_t *>(d), n) : fn(static_cast<const uint8_t *>(d), n); break;
    case 2: f->is_signed ? fn(static_cast<const int16_t *>(d), n) : fn(static_cast<const uint16_t *>(d), n); break;
    default: f->is_signed ? fn(static_cast<const int32_t *>(d), n) : fn(static_cast<const uint32_t *>(d), n); break;
    }
}

} // namespace

extern "C" bool dcm_frame_minmax(const DcmFrame *f, int64_t *min, int64_t *max)
{
    size_t n = (size_t)f->width * f->height * f->channels;
    if (!n) return false;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    with_samples(f, [&](auto *p, size_t k) {
        auto a = p[0], b = p[0];
        for (size_t i = 1; i < k; i++) {
            a = std::min(a, p[i]);
            b = std::max(b, p[i]);
        }
        lo = (int64_t)a;
        hi = (int64_t)b;
    });
    *min = lo;
    *max = hi;
    return true;
}

extern "C" bool dcm_frame_render(DcmError *err, const DcmFrame *in, const DcmRender *r, DcmFrame *out)
{
    try {
        memset(out, 0, sizeof *out);
        uint32_t w = in->width, h = in->height;
        if (r->width || r->height) {
            /* fit inside the box, keeping the aspect ratio (one side given: scale to it) */
            double sx = r->width ? (double)r->width / in->width : 1e300;
            double sy = r->height ? (double)r->height / in->height : 1e300;
            double sc = std::min(sx, sy);
            w = std::max<uint32_t>(1, (uint32_t)std::lround(in->width * sc));
            h = std::max<uint32_t>(1, (uint32_t)std::lround(in->height * sc));
        }
        if ((uint64_t)w * h * in->channels > DCM_MAX_FRAME_BYTES)
            return dcm_int_fail(err, DCM_ERR_ARG, "rendered size %ux%u is too large", w, h);
        /* 8-bit lookup of each source sample */
        size_t n = (size_t)in->width * in->height;
        /* the 8-bit samples go straight into the answer's buffer, unless resized (then into
         * a temporary, and the answer holds the resized image) */
        bool same = w == in->width && h == in->height;
        std::unique_ptr<uint8_t, void (*)(void *)> res(nullptr, free);
        Bytes tmp;
        uint8_t *src8;
        if (same) {
            res.reset(static_cast<uint8_t *>(malloc(n * in->channels + 1)));
            if (!res) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
            src8 = res.get();
        } else {
            tmp.resize(n * in->channels);
            src8 = tmp.data();
        }
        if (in->channels == 3 && in->bytes == 1 && r->mode != DCM_RENDER_WINDOW_FORCE) {
            memcpy(src8, in->data, n * in->channels);
        } else {
            double slope = r->slope, icpt = r->intercept;
            double lo, hi;
            bool windowed = false;
            if (r->mode == DCM_RENDER_STRETCH || r->mode == DCM_RENDER_WINDOW || r->mode == DCM_RENDER_WINDOW_FORCE) {
                if (r->mode != DCM_RENDER_STRETCH && r->window_width > 0) {
                    /* DICOM PS3.3 C.11.2.1.2 linear window */
                    double c = r->window_center - 0.5, ww = r->window_width - 1;
                    lo = c - ww / 2;
                    hi = c + ww / 2;
                    windowed = true;
                } else {
                    int64_t mn = 0, mx = 0;
                    dcm_frame_minmax(in, &mn, &mx);
                    double a = mn * slope + icpt, b = mx * slope + icpt;
                    lo = std::min(a, b);
                    hi = std::max(a, b);
                }
            } else {
                lo = 0;
                hi = 255;
            }
            bool invert = in->monochrome1 && in->channels == 1;
            bool round = r->mode == DCM_RENDER_STRETCH || !windowed;
            auto map8 = [&](int64_t sample) -> uint8_t {
                double v = (double)sample * slope + icpt;
                double o;
                if (hi <= lo) o = v <= lo ? 0 : 255;
                else if (v <= lo) o = 0;
                else if (v > hi) o = 255;
                else o = (v - lo) / (hi - lo) * 255.0;
                /* min..max stretches round (as Orthanc's previews), windows truncate (as
                 * Orthanc's /rendered) */
                int k = round ? clamp255(o) : (int)std::min(255.0, std::max(0.0, o));
                return (uint8_t)(invert ? 255 - k : k);
            };
            if (in->bytes <= 2) {
                /* one lookup table over the frame's value range (at most 65,536 entries)
                 * instead of the arithmetic on every sample */
                int64_t mn = 0, mx = 0;
                dcm_frame_minmax(in, &mn, &mx);
                std::vector<uint8_t> lut((size_t)(mx - mn + 1));
                for (int64_t v = mn; v <= mx; v++) lut[(size_t)(v - mn)] = map8(v);
                uint8_t *d = src8;
                const uint8_t *t = lut.data();
                with_samples(in, [&](auto *p, size_t k) {
                    for (size_t i = 0; i < k; i++) d[i] = t[(int64_t)p[i] - mn];
                });
            } else {
                for (size_t i = 0; i < n * in->channels; i++)
                    src8[i] = map8(dcm_frame_sample(in, i / in->channels, i % in->channels));
            }
        }
        if (!same) {
            res.reset(static_cast<uint8_t *>(malloc((size_t)w * h * in->channels)));
            if (!res) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
            uint8_t *dst = res.get();
            unsigned ch = in->channels;
            for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++) {
                    double fx = ((x + 0.5) * in->width) / w - 0.5, fy = ((y + 0.5) * in->height) / h - 0.5;
                    for (unsigned c = 0; c < ch; c++) {
                        double v;
                        if (r->smooth) {
                            fx = std::max(0.0, fx);
                            fy = std::max(0.0, fy);
                            uint32_t x0 = std::min<uint32_t>((uint32_t)fx, in->width - 1),
                                     y0 = std::min<uint32_t>((uint32_t)fy, in->height - 1);
                            uint32_t x1 = std::min(x0 + 1, in->width - 1), y1 = std::min(y0 + 1, in->height - 1);
                            double ax = fx - x0, ay = fy - y0;
                            auto at = [&](uint32_t xx, uint32_t yy) {
                                return (double)src8[((size_t)yy * in->width + xx) * ch + c];
                            };
                            v = (at(x0, y0) * (1 - ax) + at(x1, y0) * ax) * (1 - ay) +
                                (at(x0, y1) * (1 - ax) + at(x1, y1) * ax) * ay;
                        } else {
                            uint32_t sx = std::min<uint32_t>((uint32_t)((x * (uint64_t)in->width) / w), in->width - 1);
                            uint32_t sy = std::min<uint32_t>((uint32_t)((y * (uint64_t)in->height) / h), in->height - 1);
                            v = src8[((size_t)sy * in->width + sx) * ch + c];
                        }
                        dst[((size_t)y * w + x) * ch + c] = (uint8_t)clamp255(v);
                    }
                }
        }
        out->width = w;
        out->height = h;
        out->channels = in->channels;
        out->bytes = 1;
        out->bits_stored = 8;
        out->len = (size_t)w * h * in->channels;
        out->data = res.release();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_frame_encode_png(DcmError *err, const DcmFrame *f, void **buf, size_t *len)
{
    try {
        *buf = nullptr;
        *len = 0;
        if ((f->bytes != 1 && f->bytes != 2) || (f->channels != 1 && f->channels != 3))
            return dcm_int_fail(err, DCM_ERR_ARG, "PNG takes 8 or 16-bit gray or RGB samples");
        std::vector<const uint8_t *> rows(f->height);
        size_t stride = (size_t)f->width * f->channels * f->bytes;
        for (uint32_t y = 0; y < f->height; y++) rows[y] = static_cast<const uint8_t *>(f->data) + y * stride;
        PngOut o;
        o.cap = stride * f->height / 2 + 1024;
        if (!(o.p = static_cast<uint8_t *>(malloc(o.cap)))) return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
        if (!png_encode_rows(f, &o, rows.data()))
            return o.nomem ? dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory")
                           : dcm_int_fail(err, DCM_ERR_INTERNAL, "PNG encoding failed");
        *buf = o.p;
        *len = o.len;
        o.p = nullptr;
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" bool dcm_frame_encode_jpeg(DcmError *err, const DcmFrame *f, int quality, void **buf, size_t *len)
{
    try {
        *buf = nullptr;
        *len = 0;
        if (f->bytes != 1 || (f->channels != 1 && f->channels != 3))
            return dcm_int_fail(err, DCM_ERR_ARG, "JPEG takes 8-bit gray or RGB samples");
        if (f->width > 65535 || f->height > 65535) return dcm_int_fail(err, DCM_ERR_ARG, "image too large for JPEG");
        if (quality < 1 || quality > 100) quality = 90;
        DJCodecParameter cp(ECC_lossyYCbCr, EDC_photometricInterpretation, EUC_never, EPC_colorByPixel);
        DJCompressIJG8Bit enc(cp, EJM_baseline, (Uint8)quality);
        Uint8 *to = nullptr;
        Uint32 l = 0;
        OFCondition c = enc.encode((Uint16)f->width, (Uint16)f->height,
                                   f->channels == 3 ? EPI_RGB : EPI_Monochrome2, (Uint16)f->channels,
                                   static_cast<Uint8 *>(f->data), to, l);
        if (c.bad() || !to) return dcm_int_fail(err, DCM_ERR_INTERNAL, "JPEG encoding failed: %s", c.text());
        *buf = malloc(l ? l : 1);
        if (!*buf) {
            delete[] to;
            return dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory");
        }
        memcpy(*buf, to, l);
        delete[] to;
        *len = l;
        return true;
    }
    DCM_CATCH(err, false)
}

} // namespace mp
