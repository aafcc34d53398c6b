/* dicom_int.h -- internals shared by the C++ files of dicom/ (dcmtk_parse.cpp, and later
 * dcmtk_modify.cpp, dcmtk_scp.cpp). C++ only, never included outside dicom/.
 *
 * A DcmObject is a DcmFileFormat plus what the parse learnt about the bytes (transfer syntax,
 * meta header, PixelData offset) and a sorted index of the top-level elements. Every read of
 * the DCMTK tree goes through `lock`: DCMTK mutates on read (list cursors, string modes, byte
 * swapping), so "read-only" C functions still serialize on one object.
 */
#ifndef MP_DICOM_INT_H
#define MP_DICOM_INT_H

#ifndef __cplusplus
#error "dicom_int.h is C++ only"
#endif

#include "dcmtk/config/osconfig.h" /* first, as DCMTK requires */
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcelem.h"
#include "dcmtk/dcmdata/dcitem.h"

#include <cstdarg>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h> /* at global scope first: dicom.h's include of it is then a no-op */

namespace mp {

struct DcmDicomDir;
struct DcmObject; /* declared first, so that dicom.h's typedef names this one, not DCMTK's */
#include "dicom/dicom.h"

struct DcmObject {
    std::unique_ptr<DcmFileFormat> ff; /* never NULL */
    std::mutex lock;           /* guards every access to ff (see top comment) */
    std::string ts;            /* transfer syntax UID, never empty */
    std::string charset;       /* top-level SpecificCharacterSet, raw (empty if absent) */
    bool has_meta = false;
    bool header_only = false;  /* parsed with DCM_PARSE_HEADER_ONLY */
    bool has_pixel_data = false; /* the file had top-level PixelData (even if not kept) */
    uint64_t pixel_offset = 0;
    uint32_t pixel_header = 0; /* size of PixelData's element header (8 or 12 bytes) */
    size_t memory = 0;
    std::vector<DcmElement *> index; /* top-level elements sorted by tag (borrowed from ff) */
};

/* Fills err (may be NULL) and logs at debug; always returns false. */
bool dcm_int_fail(DcmError *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs through the callback set by dcm_set_log_fn (no-op when none). */
void dcm_int_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Wraps a DcmFileFormat that the caller built or modified (e.g. anonymization) into a new
 * DcmObject (has_meta true, no pixel offset): takes ownership of ff, computes ts (from the
 * dataset's current transfer syntax), charset, index and memory. Throws std::bad_alloc. */
DcmObject *dcm_int_object_from(std::unique_ptr<DcmFileFormat> ff);
/* Rebuilds index, charset and memory after the dataset was changed in place. Call with
 * obj->lock held (or before the object is shared). */
void dcm_int_object_refresh(DcmObject *obj);

/* Converts a raw value in the given SpecificCharacterSet (raw, possibly multi-valued) to
 * UTF-8. is_pn: PN rules for ISO 2022 resets ('^' and '='). */
std::string dcm_int_to_utf8(const std::string &charset, const char *s, size_t n, bool is_pn);

/* Registers DCMTK's decoders and encoders (RLE, JPEG, JPEG-LS) once; dcm_global_init calls it. */
void dcm_int_image_init();

/* ---- tags, paths and values (dcmtk_value.cpp) ---- */

/* Records a private name of the "Dictionary" option with its full tag (gggg,10ee as declared)
 * and creator, so that names resolve to the data element, not the creator slot. Before threads
 * start. */
void dcm_int_private_name_add(const char *name, uint32_t tag, const char *creator);
/* DefaultPrivateCreator ("" when not set). */
const std::string &dcm_int_default_creator();
/* A tag from a name (public or private), "gggg,eeee", "gggg-eeee", "ggggeeee" or "(gggg,eeee)".
 * creator (may be NULL): the private creator of a private name, else cleared. */
bool dcm_int_tag_resolve(const char *text, uint32_t *tag, std::string *creator);
/* The VR to write a tag with (see dcmtk_value.cpp): UN when unknown. */
DcmEVR dcm_int_vr_for(uint32_t tag, const std::string &creator);

/* The SpecificCharacterSet of the DefaultEncoding in force ("ISO_IR 100", ...). */
const char *dcm_int_default_charset(void);

/* Thrown by the builders below for a bad value (the caller turns it into DCM_ERR_ARG). */
struct DcmValueError {
    std::string msg;
};
/* A new element for tag from a JSON value (string, number, null, or array of objects for a
 * sequence); creator: for private tags. data_uri (Orthanc's InterpretBinaryTags): a string
 * starting "data:application/octet-stream;base64," is the base64 of the value's bytes, for
 * any VR. Caller owns the result. Throws DcmValueError. */
DcmElement *dcm_int_element_from_json(uint32_t tag, const std::string &creator, const cJSON *v,
                                      bool data_uri = false);
/* A private data element (odd group, element >= 0x1000) needs its creator in the item: inserts
 * (gggg,00xx) = creator when absent (nothing when creator is empty). Throws DcmValueError. */
void dcm_int_ensure_creator(DcmItem *item, uint32_t tag, const std::string &creator);
/* Inserts (replacing) every member of the JSON object tags into item. Throws DcmValueError. */
void dcm_int_fill_item(DcmItem *item, const cJSON *tags, const std::string &creator,
                       bool data_uri = false);

/* One step of a tag path: the tag, and for a sequence the item index. */
enum : long { DCM_PATH_NO_INDEX = -2, DCM_PATH_ANY = -1 };
struct DcmPathStep {
    uint32_t tag = 0;
    std::string creator; /* of a private name */
    long index = DCM_PATH_NO_INDEX;
};
/* "Seq[0].Sub[*].Tag" -> steps; false with error set on a bad path or an unknown tag. */
bool dcm_int_path_parse(const char *text, std::vector<DcmPathStep> &out, std::string &error);

} // namespace mp

#endif
