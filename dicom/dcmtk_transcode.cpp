/* dcmtk_transcode.cpp -- changing the transfer syntax of a whole instance, pixels included.
 *
 * DESIGN: DCMTK does it (DcmDataset::chooseRepresentation with the codecs registered by
 * dcm_global_init: RLE, JPEG baseline/extended/lossless, JPEG-LS lossless/near-lossless, and
 * their decoders). JPEG 2000 has no DCMTK codec: such a source is first decoded here frame by
 * frame with OpenJPEG (dcmtk_image.cpp) into native pixel data, which DCMTK then encodes.
 * Encoding to JPEG 2000 is refused (DCM_ERR_UNSUPPORTED), as anything DCMTK cannot encode
 * (e.g. JPEG baseline of 16-bit data). The result is a Part-10 file, meta header regenerated.
 */
#include "dicom/dicom_int.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcrlerp.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpeg/djrploss.h"
#include "dcmtk/dcmjpls/djrparam.h"

#include <cstring>
#include <vector>

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

namespace {

bool j2k(E_TransferSyntax x)
{
    return x == EXS_JPEG2000LosslessOnly || x == EXS_JPEG2000 || x == EXS_JPEG2000MulticomponentLosslessOnly ||
           x == EXS_JPEG2000Multicomponent;
}

/* Replaces encapsulated JPEG 2000 pixel data by the decoded native frames. */
bool decode_j2k_into(DcmError *err, const void *buf, size_t len, DcmDataset *ds)
{
    DcmImageSource *src = nullptr;
    if (!dcm_image_open_buffer(err, buf, len, &src)) return false;
    DcmImageInfo info;
    bool ok = dcm_image_info(err, src, &info);
    std::vector<uint8_t> all;
    DcmFrame f = {};
    for (uint32_t n = 0; ok && n < info.frames; n++) {
        ok = dcm_image_frame(err, src, n, &f);
        if (ok) {
            all.insert(all.end(), static_cast<uint8_t *>(f.data), static_cast<uint8_t *>(f.data) + f.len);
            if (f.bytes == 4 || f.is_signed != info.is_signed) {
                ok = dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "JPEG 2000 layout cannot be transcoded");
            }
        }
        dcm_frame_cleanup(&f);
    }
    dcm_image_close(src);
    if (!ok) return false;
    if (all.size() & 1) all.push_back(0);
    OFCondition c;
    if (info.bits_allocated <= 8)
        c = ds->putAndInsertUint8Array(DCM_PixelData, all.data(), (unsigned long)all.size());
    else
        c = ds->putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<Uint16 *>(all.data()),
                                        (unsigned long)(all.size() / 2));
    if (c.good() && info.samples == 3) {
        c = ds->putAndInsertString(DCM_PhotometricInterpretation, "RGB");
        if (c.good()) c = ds->putAndInsertUint16(DCM_PlanarConfiguration, 0);
    }
    if (c.bad()) return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot replace the pixel data: %s", c.text());
    return true;
}

} // namespace

extern "C" bool dcm_transcode_supported(const char *ts)
{
    E_TransferSyntax x = DcmXfer(ts).getXfer();
    switch (x) {
    case EXS_LittleEndianImplicit: case EXS_LittleEndianExplicit: case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit: case EXS_RLELossless: case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4: case EXS_JPEGProcess14: case EXS_JPEGProcess14SV1:
    case EXS_JPEGLSLossless: case EXS_JPEGLSLossy:
        return true;
    default:
        return false;
    }
}

extern "C" bool dcm_transcode(DcmError *err, const void *buf, size_t len, const char *ts, int quality,
                              void **out, size_t *outlen)
{
    DcmObject *obj = nullptr;
    try {
        dcm_int_image_init();
        *out = nullptr;
        *outlen = 0;
        E_TransferSyntax to = DcmXfer(ts).getXfer();
        if (to == EXS_Unknown) return dcm_int_fail(err, DCM_ERR_ARG, "unknown transfer syntax %s", ts);
        if (!dcm_transcode_supported(ts))
            return dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "transcoding to %s (%s) is not supported", ts,
                                DcmXfer(to).getXferName());
        if (!dcm_parse(err, buf, len, 0, &obj)) return false;
        bool ok = true;
        {
            std::lock_guard<std::mutex> g(obj->lock);
            DcmDataset *ds = obj->ff->getDataset();
            E_TransferSyntax from = ds->getOriginalXfer();
            if (j2k(from) && ds->tagExists(DCM_PixelData)) {
                if (!decode_j2k_into(err, buf, len, ds)) ok = false;
            }
            if (ok && ds->tagExists(DCM_PixelData)) {
                quality = quality < 1 || quality > 100 ? 90 : quality;
                DJ_RPLossy lossy(quality);
                DJ_RPLossless lossless(1, 0);
                DJLSRepresentationParameter jls_lossless(0, OFTrue), jls_near(2, OFFalse);
                DcmRLERepresentationParameter rle;
                const DcmRepresentationParameter *p = nullptr;
                switch (to) {
                case EXS_JPEGProcess1: case EXS_JPEGProcess2_4: p = &lossy; break;
                case EXS_JPEGProcess14: case EXS_JPEGProcess14SV1: p = &lossless; break;
                case EXS_JPEGLSLossless: p = &jls_lossless; break;
                case EXS_JPEGLSLossy: p = &jls_near; break;
                case EXS_RLELossless: p = &rle; break;
                default: break;
                }
                E_TransferSyntax target = DcmXfer(to).isEncapsulated() ? to : EXS_LittleEndianExplicit;
                OFCondition c = ds->chooseRepresentation(target, p);
                if (c.bad() || !ds->canWriteXfer(target))
                    ok = dcm_int_fail(err, DCM_ERR_UNSUPPORTED, "cannot transcode %s to %s%s%s",
                                      DcmXfer(from).getXferID(), ts, c.bad() ? ": " : "", c.bad() ? c.text() : "");
                else
                    ds->removeAllButCurrentRepresentations();
            }
            if (ok) dcm_int_object_refresh(obj);
        }
        if (ok) ok = dcm_write(err, obj, ts, out, outlen);
        dcm_object_destroy(obj);
        return ok;
    }
    catch (...) {
        dcm_object_destroy(obj);
        return dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error while transcoding");
    }
}

} // namespace mp
