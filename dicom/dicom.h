/* dicom.h -- the C face of DCMTK. Everything DICOM-specific lives behind this header:
 * parsing a buffer, reading tags, Orthanc's /tags JSON, writing a buffer, and (see the
 * DIMSE section) the C-ECHO / C-STORE listener. The implementation is the only C++ in the
 * project (dcmtk_*.cpp); no DCMTK type crosses this header, and every exported function
 * catches C++ exceptions and turns them, or a bad OFCondition, into a DcmError.
 *
 * Threads: after dcm_global_init() (called once by main before other threads start), every
 * function may be called from any thread; a DcmObject must not be used by two threads at once
 * (the cache hands out pinned objects read-only: the dcm_get_* / dcm_tags_json functions only
 * read and are safe to call concurrently on one object).
 *
 * Tags are written as uint32_t: (group << 16) | element, e.g. 0x00100020 for PatientID.
 */
#ifndef MP_DICOM_H
#define MP_DICOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. DCM_ERR_FORMAT is "the bytes are not a DICOM file we can read" (Orthanc's
 * BadFileFormat); DCM_ERR_MISSING is "a required tag is absent". */
enum {
    DCM_OK = 0,
    DCM_ERR_FORMAT = 1,
    DCM_ERR_MISSING = 2,
    DCM_ERR_NOMEM = 3,
    DCM_ERR_ARG = 4,
    DCM_ERR_NETWORK = 5,
    DCM_ERR_INTERNAL = 6,
    DCM_ERR_UNSUPPORTED = 7, /* valid DICOM we cannot handle (a transfer syntax we do not
                                decode, ...): HTTP 415 */
};

typedef struct DcmError {
    int code;
    char message[256];
} DcmError;

/* Log levels for the callback, same numbers as server/log.h. */
enum { DCM_LOG_ERROR = 0, DCM_LOG_WARNING = 1, DCM_LOG_INFO = 2, DCM_LOG_DEBUG = 3 };
typedef void (*DcmLogFn)(int level, const char *message);

/* Loads the data dictionary and quiets DCMTK's own logger to warnings. Call once, before any
 * other thread starts. false if the dictionary cannot be loaded. */
bool dcm_global_init(DcmError *err);
/* Sets the log callback (NULL: discard). Call before threads start. */
void dcm_set_log_fn(DcmLogFn fn);
/* Registers a private tag from the "Dictionary" configuration option; vr is "LO", "UL", ...
 * Call before threads start. */
bool dcm_dictionary_add(DcmError *err, uint32_t tag, const char *vr, const char *name,
                        int min_multiplicity, int max_multiplicity, const char *private_creator);

/* The private creator used for private tags given by number ("gggg,10ee") when a request does
 * not name one (Orthanc's DefaultPrivateCreator option; "" or NULL: none). Call before threads
 * start. */
void dcm_set_default_private_creator(const char *creator);

/* Character set of files without SpecificCharacterSet, by Orthanc's DefaultEncoding name:
 * "Latin1" (the default), "Utf8", "Ascii", "Latin2".."Latin5", "Cyrillic", "Windows1251",
 * "Arabic", "Greek", "Hebrew", "Thai", "Japanese", "Chinese", "JapaneseKanji", "Korean",
 * "SimplifiedChinese" (case-insensitive). DCM_ERR_ARG for an unknown name (the setting is then
 * unchanged). Any thread may call it (PUT /tools/default-encoding): files parsed afterwards use
 * the new one. */
bool dcm_set_default_encoding(DcmError *err, const char *name);
/* Orthanc's name of the DefaultEncoding in force ("Latin1", ...). */
const char *dcm_default_encoding(void);

/* The tag for a dictionary name ("PatientName"), or "gggg,eeee" / "gggg-eeee" / "ggggeeee"
 * in hex. false if neither. */
bool dcm_tag_parse(const char *text, uint32_t *tag);
/* The dictionary VR of a tag ("PN", "DA", ...; "UN" if unknown) into vr[3]. */
void dcm_tag_vr(uint32_t tag, char vr[3]);
/* The dictionary name of a tag into out, or "gggg,eeee" when unknown. */
void dcm_tag_name(uint32_t tag, char *out, size_t size);

/* ---- Parsed DICOM objects ------------------------------------------------------------ */

typedef struct DcmObject DcmObject; /* opaque: a parsed file (meta header + dataset) */
/* (Implementation note: DCMTK has a C++ class named DcmObject at global scope, so the C++ files
 * of dicom/ include this header through dicom/dicom_int.h, inside `namespace mp`. C callers are
 * unaffected: the functions are extern "C".) */

enum {
    /* Stop parsing before PixelData (7FE0,0010): the object then holds only the header.
     * The rest of the buffer is still checked to be a complete element (a truncated file is
     * rejected), without copying the pixels. */
    DCM_PARSE_HEADER_ONLY = 1u << 0,
};

/* Parses a DICOM Part-10 file (with or without the 128-byte preamble) or a raw dataset
 * without meta header (transfer syntax guessed: implicit/explicit, little/big endian), in any
 * transfer syntax DCMTK reads. Truncated input is an error (DCM_ERR_FORMAT).
 * `buf` is borrowed: the object copies what it keeps. On success *out is the caller's, to
 * free with dcm_object_destroy(). */
bool dcm_parse(DcmError *err, const void *buf, size_t len, unsigned flags, DcmObject **out);
void dcm_object_destroy(DcmObject *obj); /* NULL is fine */
/* Notes on dcm_parse:
 * - The whole buffer is checked for framing (every element, item and fragment inside it; a
 *   partial element at the end is an error), also in header-only mode, without copying pixels.
 * - A buffer starting with "DICM" but no preamble is accepted too.
 * - Header-only objects do not hold PixelData nor what follows it: dcm_get_string() of
 *   0x7FE00010 answers 0 (absent) for them, -1/DCM_ERR_ARG (binary) for full ones.
 * - Deflated files are always inflated and parsed fully (PixelData then dropped in header-only
 *   mode); their dcm_object_pixel_data_offset() is 0, as the offset has no meaning in the file.
 */

/* Approximate heap bytes held by the object (for the cache's byte bound). */
size_t dcm_object_memory(const DcmObject *obj);

/* The transfer syntax UID of the file (from the meta header, or the one detected for a
 * dataset without meta header). Borrowed, valid while obj lives. Never NULL. */
const char *dcm_object_transfer_syntax(const DcmObject *obj);
/* true if the file had a Part-10 meta header. */
bool dcm_object_has_meta(const DcmObject *obj);
/* Byte offset of PixelData's value in the parsed buffer (as Orthanc's PixelDataOffset
 * metadata), or 0 when the dataset has no PixelData at top level. */
uint64_t dcm_object_pixel_data_offset(const DcmObject *obj);
/* Byte offset of PixelData's element header (tag, VR, length) in the parsed buffer, as
 * Orthanc's PixelDataOffset metadata; 0 when unknown (no PixelData, deflated file). */
uint64_t dcm_object_pixel_data_header_offset(const DcmObject *obj);

/* Reads a top-level tag of the dataset as text, converted to UTF-8 from the file's
 * SpecificCharacterSet (or Latin-1 when it has none), trailing/leading spaces removed, values
 * joined with '\\' as Orthanc does. (Conversion: every defined term incl. ISO 2022 escapes,
 * UTF-8, GB18030/GBK; bytes invalid in the character set become U+FFFD; numbers (US, UL, FL,
 * ...) come as DCMTK prints them, AT as "gggg,eeee".) Returns:
 *   1 and *value = malloc'd string (caller frees with free()) when the tag is present
 *     (an empty string if it is present with no value),
 *   0 and *value = NULL when absent,
 *  -1 on error (err filled). Sequences and binary VRs (OB, OW, UN, ...) give -1 / DCM_ERR_ARG. */
int dcm_get_string(DcmError *err, const DcmObject *obj, uint32_t tag, char **value);

/* Orthanc's JSON views of the dataset (top level down through sequences), stopping before
 * PixelData. */
enum {
    DCM_JSON_FULL = 0,     /* /tags: {"0010,0010": {"Name","Type","Value"[, "PrivateCreator"]}} */
    DCM_JSON_SIMPLIFY = 1, /* /simplified-tags, /tags?simplify: {"PatientName": "value"} */
    DCM_JSON_SHORT = 2,    /* /tags?short: {"0010,0010": "value"} */
};
/* max_length: string values longer than this are "TooLong" (Type TooLong, Value null, or null
 * in the simplified views); 0 means no limit. Orthanc's REST default is 256.
 * Details: values as dcm_get_string (UTF-8, stripped; a sequence item's own
 * SpecificCharacterSet applies inside it). Types: "String" (text and numbers; an empty text
 * value is ""), "Null" (a number/AT element without value, and binary values: OB, OW, OF, OD,
 * OL, OV, UN, ..., as Orthanc), "Sequence" (Value = array of item objects), "TooLong". Names are
 * DCMTK's dictionary names (retired tags are "RETIRED_..."); unknown tags "Unknown Tag & Data";
 * private data elements other than sequences carry "PrivateCreator". Keys within an entry:
 * Name, PrivateCreator?, Type, Value. Group 0002 is never listed; top-level PixelData is listed
 * as a placeholder (Type Null, Value null) and what follows it is not (a PixelData nested in a
 * sequence, e.g. an icon, is listed as any binary value). SIMPLIFY keys every tag by its name
 * (unknown tags "Unknown Tag & Data"), the last of tags sharing a name winning, as Orthanc.
 * Returns a new cJSON tree (caller deletes) or NULL with err set. */
cJSON *dcm_to_json(DcmError *err, const DcmObject *obj, int format, size_t max_length);

/* The file meta information (group 0002) in dcm_to_json's formats, binary values (OB/OW/UN)
 * left out, as Orthanc's /instances/{id}/header. */
cJSON *dcm_header_json(DcmError *err, const DcmObject *obj, int format);

/* dcm_to_json with a list of tags whose values are never TooLong (Orthanc's
 * ?ignore-length=tag,tag). */
cJSON *dcm_to_json_ex(DcmError *err, const DcmObject *obj, int format, size_t max_length,
                      const uint32_t *ignore_length, size_t nignore);

/* ---- DICOM JSON model, PS3.18 F.2 (dicom/dcmtk_dicomweb.cpp) -------------------------------
 * The one writer of DICOMweb JSON: {"GGGGEEEE": {"vr": "..", "Value": [...] | "InlineBinary":
 * ".." | "BulkDataURI": ".."}, ...} for the dataset (group 0002 never), keys in tag order.
 * Text is UTF-8 (from the file's or the item's SpecificCharacterSet), '\\'-split (not LT, ST,
 * UT, UR), padding stripped; PN as {"Alphabetic", "Ideographic", "Phonetic"} (the '='-groups
 * present); IS/DS/US/SS/UL/SL/UV/SV/FL/FD as JSON numbers (floats in the shortest text that
 * reads back equal); AT as "GGGGEEEE"; an empty value has no "Value" (SQ always has one). */
typedef struct DcmWebJsonOptions {
    /* Binary values (OB, OW, UN, ...) longer than this many bytes get a BulkDataURI instead of
     * InlineBinary (0: no threshold, every value inline unless encapsulated). */
    size_t bulk_threshold;
    /* BulkDataURI = bulk_prefix + "/ggggeeee" (+ "/<item>/ggggeeee" inside sequences), e.g.
     * ".../instances/1.2.3/bulk". NULL: no BulkDataURI at all (every binary inline, encapsulated
     * pixel data as the vr alone). A first byte 0x01 is a marker kept raw in the text (a
     * control character never appears raw elsewhere), so a stored text can have it replaced
     * by the request's base URL when it is served. */
    const char *bulk_prefix;
    /* A header-only object (DCM_PARSE_HEADER_ONLY) lists its PixelData by BulkDataURI
     * (vr OB when encapsulated, else OW when BitsAllocated > 8, else OB). */
    bool pixel_data;
} DcmWebJsonOptions;
/* The dataset as compact JSON text (*out malloc'd, NUL-terminated, *len its length; len may be
 * NULL). Read-only on obj (concurrent calls on a pinned cached object are fine). */
bool dcm_dicomweb_json_text(DcmError *err, const DcmObject *obj, const DcmWebJsonOptions *opt,
                            char **out, size_t *len);
/* The same as a cJSON tree (caller deletes). */
cJSON *dcm_dicomweb_json(DcmError *err, const DcmObject *obj, const DcmWebJsonOptions *opt);
/* One element {"vr": .., "Value": [..]} from a value as text ('\\'-joined, UTF-8: the query
 * engine's and the index's form), by the same rules; vr NULL: the dictionary's. malloc'd, NULL
 * when out of memory. */
char *dcm_dicomweb_value_text(uint32_t tag, const char *vr, const char *value);
/* The VR dcm_dicomweb_value_text uses for tag when given none (the dictionary's, DCMTK's
 * internal VRs mapped to PS3.18's): look it up once for many values of one tag. */
void dcm_dicomweb_vr(uint32_t tag, char vr[3]);

/* ---- Raw content by path (/instances/{id}/content/...; dicom/dcmtk_content.cpp) ---------
 * path: segments after /content/: tags ("0010-0010", "0010,0010", "PatientName"), and after a
 * sequence an item index ("0008-1140/0/0008-1150"); after PixelData a fragment index.
 * Reading the file: header only (DCM_PARSE_HEADER_ONLY); the pixel data are read in place from
 * `file` at their offset (fragments walked item by item, never parsed into a tree), so a big
 * file is not held twice. (Deflated files are parsed fully when PixelData is asked.)
 * The answer is either a listing (npath 0: the dataset's tags "gggg-eeee" in file order, group
 * 0002 excluded, PixelData included; a sequence: its item indexes "0".."n-1"; an item: its
 * tags; encapsulated PixelData: its items, 0 being the basic offset table) or a value: the
 * raw bytes as stored (little endian for binary VRs), text values converted to UTF-8 from the
 * file's character set (padding kept, as Orthanc sends the raw value). Native (not
 * encapsulated) top-level PixelData lists one item "0", whose value is the pixels.
 * Errors: DCM_ERR_MISSING (absent tag, item or fragment: the caller answers 404), DCM_ERR_ARG
 * (a segment that is neither a tag nor a number), DCM_ERR_FORMAT (unreadable file). */
typedef struct DcmContent {
    bool is_list;
    char **names;      /* listing: malloc'd strings */
    size_t nnames;
    void *data;        /* value: malloc'd (may be NULL when len is 0) */
    size_t len;
    bool is_text;      /* value is UTF-8 text */
} DcmContent;
bool dcm_content(DcmError *err, const void *file, size_t len, const char *const *path,
                 size_t npath, DcmContent *out);
void dcm_content_cleanup(DcmContent *c); /* zeroes it; fine on a zeroed struct */

/* ---- Creating an instance (/tools/create-dicom; dicom/dcmtk_content.cpp) ---------------
 * tags: {"PatientName": "A^B", "0010,0020": "id", "ReferencedSeriesSequence": [{...}, ...]}
 * (values are UTF-8 strings, or arrays of objects for sequences); SpecificCharacterSet is set
 * to "ISO_IR 192" unless given. Missing PatientID, Study/Series/SOP Instance UIDs are
 * generated, SOPClassUID defaults to Secondary Capture (1.2.840.10008.5.1.4.1.1.7), like
 * Orthanc. content (may be NULL): a PDF ("application/pdf": Encapsulated PDF SOP class) or a
 * PNG image ("image/png", decoded by libpng: 8/16-bit gray or RGB, palette, interlaced; alpha
 * dropped as Orthanc; DCM_ERR_FORMAT when the PNG is bad) or a JPEG image
 * ("image/jpeg": kept encapsulated, JPEG baseline transfer syntax).
 * The result is a Part-10 file in Explicit VR Little Endian (*buf malloc'd, free()).
 * DCM_ERR_ARG for an unknown tag name, a bad value or an unsupported content. */
bool dcm_create(DcmError *err, const cJSON *tags, const char *content_type, const void *content,
                size_t content_len, void **buf, size_t *len);
/* dcm_create with the private creator for private tags given by number (NULL: the
 * DefaultPrivateCreator): their VR comes from the private dictionary (else UN), and an item
 * holding a private tag gets its creator element when it has none. Tags may be private
 * Dictionary names, at any depth. interpret_binary (Orthanc's InterpretBinaryTags): a value
 * "data:application/octet-stream;base64,..." is the base64 of the value's bytes, any VR. */
bool dcm_create_ex(DcmError *err, const cJSON *tags, const char *private_creator,
                   bool interpret_binary, const char *content_type, const void *content,
                   size_t content_len, void **buf, size_t *len);

/* Serializes the object as a Part-10 file (meta header regenerated) in `transfer_syntax`
 * (NULL: keep the current one). *buf is malloc'd (free with free()).
 * DCM_ERR_ARG: an object parsed with DCM_PARSE_HEADER_ONLY that had pixel data (it would lose
 * them), an unknown transfer syntax, or a change to or from a compressed one (pixels are never
 * decoded). Uncompressed changes (implicit/explicit, little/big endian, deflated) are fine.
 * Sequences are written with explicit lengths, group lengths recomputed where present. */
bool dcm_write(DcmError *err, DcmObject *obj, const char *transfer_syntax, void **buf,
               size_t *len);

/* ---- Modify / anonymize (dicom/dcmtk_modify.cpp) -------------------------------------------
 * A DcmModifySpec says what to do to a dataset: the PS3.15 Table E.1-1 basic profile of an
 * edition (anonymization; the tables are generated at build time from the CSVs in dicom/data/),
 * tags or paths to keep, remove or replace, private tags, and which UIDs to remap. dcm_modify()
 * applies it in place to a FULL-parsed object (dcm_parse flags 0); dcm_write() then gives the
 * new file.
 * Profile actions, as Orthanc applies them: X remove; Z and D empty the element (inside a
 * sequence, an element that is not text is removed instead); U new UID through the spec's UID
 * function; S (reference sequences) kept and walked; tags not in the table are kept. The
 * profile applies at every nesting level; private tags (odd groups) are removed at every level
 * unless kept. Keep wins over the profile and private removal; a kept sequence is not walked.
 * Paths: "Tag", "Seq[i].Tag", "Seq[*].Tag", nested; each tag a name (private names of the
 * Dictionary option too), "gggg,eeee", "ggggeeee" or "(gggg,eeee)". Remove and Replace apply at
 * their path after the profile; Replace inserts a missing tag (in an existing item); a path
 * whose sequence or item is absent does nothing. Top-level UIDs that are replaced (and in an
 * anonymization, mapped) are rewritten where sequences reference the old value.
 * A spec is read-only once built and may be shared by threads (its UID function must be
 * thread-safe). */
typedef struct DcmModifySpec DcmModifySpec;

/* Maps an old UID to its new value, consistently (same input -> same output) for a spec's
 * life. out: at most 64 characters + NUL. Called concurrently from several threads. */
typedef void (*DcmUidFn)(void *ctx, const char *old_uid, char out[65]);

/* anonymize: start from the basic profile (edition 2023b unless dcm_modify_spec_edition); else
 * from "keep everything". uid_fn/ctx: used by the profile's U action and by
 * dcm_modify_spec_remap tags (NULL: UIDs left as they are). The private creator starts as
 * DefaultPrivateCreator (dcm_set_default_private_creator). */
DcmModifySpec *dcm_modify_spec_new(DcmError *err, bool anonymize, DcmUidFn uid_fn, void *ctx);
void dcm_modify_spec_free(DcmModifySpec *spec); /* NULL is fine */
/* The profile edition: "2008", "2017c", "2021b", "2023b". DCM_ERR_ARG for another. */
bool dcm_modify_spec_edition(DcmError *err, DcmModifySpec *spec, const char *edition);
/* The private creator for private tags given by number (Orthanc's PrivateCreator option). A
 * private tag given by a Dictionary name uses the creator declared with it. */
void dcm_modify_spec_private_creator(DcmModifySpec *spec, const char *creator);
bool dcm_modify_spec_keep(DcmError *err, DcmModifySpec *spec, uint32_t tag);
bool dcm_modify_spec_remove(DcmError *err, DcmModifySpec *spec, uint32_t tag);
/* By path (see above). *top (may be NULL): the tag when the path is one top-level tag, else 0.
 * DCM_ERR_ARG for a bad path or an unknown tag. */
bool dcm_modify_spec_keep_path(DcmError *err, DcmModifySpec *spec, const char *path, uint32_t *top);
bool dcm_modify_spec_remove_path(DcmError *err, DcmModifySpec *spec, const char *path, uint32_t *top);
/* value: UTF-8 text, written with the tag's VR (private tags: the private dictionary's VR for
 * the creator, else UN, whose value is the text's bytes padded with NUL; AT: "gggg,eeee" or
 * names joined by '\\'). DCM_ERR_ARG if the value does not fit the VR. A non-ASCII value makes
 * dcm_modify() convert the dataset to UTF-8 (SpecificCharacterSet ISO_IR 192) first. */
bool dcm_modify_spec_replace(DcmError *err, DcmModifySpec *spec, uint32_t tag, const char *value);
/* Replace at a path with a JSON value: a string, a number, null (empty), or an array of
 * objects (a sequence; each object's keys are tags as above). The value is copied. */
bool dcm_modify_spec_replace_json(DcmError *err, DcmModifySpec *spec, const char *path,
                                  const cJSON *value, uint32_t *top);
/* Top-level UI tag to remap with uid_fn (modify: Study/Series/SOP Instance UIDs by level). */
bool dcm_modify_spec_remap(DcmError *err, DcmModifySpec *spec, uint32_t tag);
/* keep: keep private tags (anonymize removes them by default); for modify, remove=true removes
 * them. */
void dcm_modify_spec_private(DcmModifySpec *spec, bool keep);
/* true if the spec keeps / removes / replaces that top-level tag explicitly. */
bool dcm_modify_spec_touches(const DcmModifySpec *spec, uint32_t tag);

/* Applies spec to obj (parsed with flags 0), in place. DCM_ERR_ARG for a header-only object. */
bool dcm_modify(DcmError *err, DcmObject *obj, const DcmModifySpec *spec);
/* A deep copy of obj (the cache hands out shared objects: modify a copy). */
bool dcm_object_clone(DcmError *err, const DcmObject *obj, DcmObject **out);

/* For tests: the profile action for a top-level tag ('X', 'Z', 'D', 'U', 'S', or 'K' when the
 * table does not list it), in the default edition (2023b) or the one named ('?': unknown). */
char dcm_profile_action(uint32_t tag);
char dcm_profile_action_ex(const char *edition, uint32_t tag);

/* ---- DIMSE listener (dicom/dcmtk_scp.cpp) -------------------------------------------------
 * A DICOM listener with DCMTK's dcmnet: Verification (C-ECHO) and every storage SOP class DCMTK
 * knows, in the uncompressed transfer syntaxes and the compressed ones (JPEG, JPEG-LS,
 * JPEG 2000, RLE, MPEG/HEVC) plus deflate, kept as the caller proposed them (the first one in
 * the SCU's list that we know wins). Datasets are received bit for bit (no parse, no
 * re-encoding) behind a meta header we write, and handed to the store callback as a Part-10
 * buffer. One listener thread ("dicom") accepts; each connection gets its own thread
 * ("dicom-N") that reads the association request, negotiates and serves, so that a peer that
 * sends nothing (or half a PDU) holds up no one else. At most max_associations negotiated
 * associations at once (more are rejected: transient, local limit exceeded). An association
 * idle for timeout_s is aborted. */

/* Checks the structure of an A-ASSOCIATE-RQ (pdu_type 0x01) or -AC (0x02) body (the PDU after
 * its 6-byte header): every item and sub-item inside its parent, UIDs at most 64 bytes, the
 * fixed-size sub-items of their size, presentation context items of the PDU's kind
 * (dicom/assoc_check.c). false with the reason in why when DCMTK must not see it. */
bool dcm_assoc_pdu_check(int pdu_type, const unsigned char *body, size_t len, char *why,
                         size_t why_size);

/* Our implementation class UID (2.25 UUID-derived root) and version name, for meta headers. */
#define DCM_IMPLEMENTATION_CLASS_UID "2.25.136541954189971727474933460125548376804"
#define DCM_IMPLEMENTATION_VERSION_NAME "MINIPACS_010"

typedef struct DcmScp DcmScp; /* opaque: a running listener */

/* What the callbacks learn about an association (and, for store, the instance). All strings
 * are borrowed for the duration of the call; never NULL (may be ""). */
typedef struct DcmAssocInfo {
    uint64_t id;                  /* association number, from 1 */
    const char *calling_aet;      /* trimmed */
    const char *called_aet;       /* trimmed */
    const char *peer_host;        /* peer IP address */
    const char *sop_class_uid;    /* store: AffectedSOPClassUID of the C-STORE-RQ */
    const char *sop_instance_uid; /* store: AffectedSOPInstanceUID */
    const char *transfer_syntax;  /* store: the presentation context's transfer syntax */
} DcmAssocInfo;

/* accept() answers a mask: DCM_SCP_ALLOW_ECHO / DCM_SCP_ALLOW_STORE; presentation contexts of
 * a service not allowed are refused. 0 rejects the association (permanent; *reject is one of
 * DCM_SCP_REJECT_*). The listener logs rejections (warning) with AETs, host and `reason`. */
enum { DCM_SCP_ALLOW_ECHO = 1u, DCM_SCP_ALLOW_STORE = 2u };
enum { DCM_SCP_REJECT_NO_REASON = 0, DCM_SCP_REJECT_CALLING_AET = 1,
       DCM_SCP_REJECT_CALLED_AET = 2 };

typedef struct DcmScpConfig {
    int port;              /* TCP port to listen on (all interfaces) */
    const char *aet;       /* our AE title (copied) */
    int timeout_s;         /* idle timeout of an association, and the DIMSE timeout (ACSE:
                              min(timeout_s, 30)); 0: none */
    int max_associations;  /* >= 1 */
    bool tcp_nodelay;      /* sets TCP_NODELAY=1 in the environment (DCMTK reads it) and on
                              each accepted socket */
    unsigned max_pdu;      /* largest PDU we receive; 0: DCMTK's maximum (131072) */
    uint64_t max_dataset;  /* largest C-STORE dataset, bytes; past it the association is
                              aborted (logged). 0: no limit */
    unsigned max_handshakes; /* connections accepted but not yet negotiated; past it the
                                oldest is closed. 0: 32. The handshake (accept to A-ASSOCIATE-AC
                                or -RJ) is bounded by min(timeout_s, 10) s (10 s if timeout_s
                                is 0). */
    void *ctx;             /* handed to the callbacks */
    /* Called on the association's thread for each association request (several may run at
     * once). reason: text for the log. */
    unsigned (*accept)(void *ctx, const DcmAssocInfo *info, int *reject, char *reason,
                       size_t reason_size);
    /* Called on the association's thread for each C-STORE: part10/len is the received instance
     * (meta header + dataset as received), borrowed for the call. Returns the DIMSE status
     * (0x0000 success, 0xA700 out of resources, 0xC000 cannot understand, 0x0110 failure, ...);
     * comment (may stay empty) goes into the response's ErrorComment on failure. */
    uint16_t (*store)(void *ctx, const void *part10, size_t len, const DcmAssocInfo *info,
                      char *comment, size_t comment_size);
    /* Optional: called first on every thread the listener starts ("dicom", "dicom-7"), so the
     * caller can name it for its log. */
    void (*thread_start)(void *ctx, const char *name);
    /* Optional, all three or none: large datasets go to a file instead of memory. Once an
     * instance (meta header + dataset) passes spool_threshold bytes, spool_open gives a
     * writable descriptor (positioned at 0) and a handle, or -1 (the C-STORE then fails with
     * 0xA700); what arrived so far and the rest are written to it, and store_spool replaces
     * store for that instance (len: the file's length). spool_close(handle) always ends it,
     * also when the association is cut mid-dataset (it must then remove the file). Deflated
     * datasets always stay in memory (their trailing pad byte is dropped there). */
    uint64_t spool_threshold;
    int (*spool_open)(void *ctx, void **handle);
    uint16_t (*store_spool)(void *ctx, void *handle, uint64_t len, const DcmAssocInfo *info,
                            char *comment, size_t comment_size);
    void (*spool_close)(void *ctx, void *handle);
} DcmScpConfig;

/* Opens the port and starts the listener thread. cfg is copied (ctx and callbacks are kept as
 * given and must outlive the listener). On success *out is the caller's, for dcm_scp_stop().
 * DCM_ERR_NETWORK if the port cannot be opened. Call from one thread (main). */
bool dcm_scp_start(DcmError *err, const DcmScpConfig *cfg, DcmScp **out);
/* Stops accepting (promptly), lets running associations finish for up to grace_ms, then
 * aborts the rest, waits for their threads, closes the port, logs a summary (info) and frees
 * scp. NULL is fine. */
void dcm_scp_stop(DcmScp *scp, unsigned grace_ms);
/* Live counters (for logs and metrics). */
typedef struct DcmScpStats {
    uint64_t associations;   /* accepted so far */
    uint64_t rejected;       /* rejected (policy or limit) */
    uint64_t stored;         /* C-STORE answered with success */
    uint64_t store_failures; /* C-STORE answered with a failure status */
    uint32_t active;         /* associations running now */
} DcmScpStats;
void dcm_scp_stats(const DcmScp *scp, DcmScpStats *out);
/* The C-STORE SCP's run-time policy (Orthanc's /tools/accepted-transfer-syntaxes and
 * /tools/unknown-sop-class-accepted), read at each negotiation, so it applies to associations
 * negotiated afterwards; any thread may call these. The transfer syntaxes the listener can
 * take are dcm_scp_known_syntax(0..n-1) (NULL past the last, n <= 64); bit i of the mask
 * accepts the i-th (default: all). With unknown SOP classes accepted (default: not), an
 * abstract syntax that is neither verification, storage nor query/retrieve is negotiated as
 * a storage class, as Orthanc's UnknownSopClassAccepted. */
const char *dcm_scp_known_syntax(size_t i);
uint64_t dcm_scp_accepted_syntaxes(void);
void dcm_scp_set_accepted_syntaxes(uint64_t mask);
bool dcm_scp_unknown_sop_class_accepted(void);
void dcm_scp_set_unknown_sop_class_accepted(bool on);

/* ---- Query/retrieve (dicom/dcmtk_qr.cpp: SCP side; dicom/dcmtk_scu.cpp: SCU side) ----------
 * Keys cross this header as (tag, UTF-8 text) pairs: identifiers received are converted from
 * their SpecificCharacterSet to UTF-8; identifiers and answers we send are written in UTF-8
 * (SpecificCharacterSet "ISO_IR 192"). Sequences are not carried (a sequence key is dropped). */
enum { DCM_QR_PATIENT_ROOT = 0, DCM_QR_STUDY_ROOT = 1 };

typedef struct DcmQrKey {
    uint32_t tag;
    const char *value;  /* UTF-8; "" for a universal key; NULL in an answer: present, empty */
} DcmQrKey;

/* The listener's side of one C-FIND/C-MOVE/C-GET being served (opaque, valid during the
 * callback). */
typedef struct DcmQrOp DcmQrOp;

/* C-FIND: sends one pending answer (0xFF00) made of keys. false: stop (the peer sent C-CANCEL
 * or the association broke); the callback then returns, its status is replaced by Cancel. */
bool dcm_qr_emit(DcmQrOp *op, const DcmQrKey *keys, size_t n);
/* C-MOVE / C-GET: sends a pending response with the sub-operation counts. false: stop
 * (C-CANCEL or broken association). */
bool dcm_qr_progress(DcmQrOp *op, unsigned remaining, unsigned completed, unsigned failed,
                     unsigned warning);
/* The Message ID of the C-MOVE-RQ (for the sub-operations' MoveOriginatorMessageID). */
uint16_t dcm_qr_message_id(const DcmQrOp *op);

/* A stored file to send by C-STORE (C-MOVE sub-operation, C-GET, /modalities/{x}/store).
 * The file is read from fd (positioned anywhere; read with pread) and sent as stored when the
 * peer accepted its transfer syntax: the dataset part leaves bit for bit, never held whole in
 * memory. Otherwise it is parsed and converted to an uncompressed syntax the peer accepted
 * (DCMTK's decoders: JPEG, JPEG-LS, RLE), which holds it in memory. */
typedef struct DcmStoreFile {
    int fd;
    uint64_t size;
    const char *sop_class_uid;
    const char *sop_instance_uid;
    const char *transfer_syntax;   /* as stored */
    /* The file sent after this one on the same association, or NULL: the first part of its
     * dataset is read while the peer stores this one. Its fd is only read during the call. */
    const struct DcmStoreFile *next;
} DcmStoreFile;

/* C-GET: C-STORE of one file over the requesting association (the peer took the SCP role for
 * the storage contexts). Returns false on a network failure (the operation must stop);
 * otherwise *status is the peer's C-STORE status (0x0122 when no context fits the file). */
bool dcm_qr_get_store(DcmError *err, DcmQrOp *op, const DcmStoreFile *f, uint16_t *status);

/* accept() may also answer these (see DCM_SCP_ALLOW_ECHO). Storage contexts proposed with the
 * SCP role (C-GET's) are accepted with DCM_SCP_ALLOW_GET. */
enum { DCM_SCP_ALLOW_FIND = 4u, DCM_SCP_ALLOW_MOVE = 8u, DCM_SCP_ALLOW_GET = 16u };

/* Query/retrieve callbacks of the listener, set with dcm_scp_set_qr() before dcm_scp_start.
 * Called on the association's thread with the identifier's keys (borrowed), the information
 * model and QueryRetrieveLevel (0 patient .. 3 image; -1 when absent or unknown).
 * find: calls dcm_qr_emit per answer; returns the final status (0x0000, 0xA700 out of
 * resources, 0xA900 identifier does not match, 0xC000 unable to process, ...).
 * move: resolves dest_aet (unknown: 0xA801), sends the sub-operations itself (dcm_scu_*),
 * reporting with dcm_qr_progress; returns the final status (0x0000, 0xB000 when some failed,
 * 0xA702 when they could not be performed, 0xFE00 canceled, ...). *counts is the final
 * completed/failed/warning for the last response.
 * get: as move, with dcm_qr_get_store for each file. */
typedef struct DcmQrCounts {
    unsigned completed, failed, warning;
} DcmQrCounts;
typedef struct DcmQrHandlers {
    uint16_t (*find)(void *ctx, const DcmAssocInfo *info, int model, int level,
                     const DcmQrKey *keys, size_t n, DcmQrOp *op);
    uint16_t (*move)(void *ctx, const DcmAssocInfo *info, int model, int level,
                     const DcmQrKey *keys, size_t n, const char *dest_aet, DcmQrOp *op,
                     DcmQrCounts *counts);
    uint16_t (*get)(void *ctx, const DcmAssocInfo *info, int model, int level,
                    const DcmQrKey *keys, size_t n, DcmQrOp *op, DcmQrCounts *counts);
} DcmQrHandlers;
/* Installs the handlers for the listeners started afterwards (process-wide; main thread,
 * before dcm_scp_start). NULL handlers: the service is not offered. */
void dcm_scp_set_qr(const DcmQrHandlers *h);

/* ---- SCU (dicom/dcmtk_scu.cpp) -----------------------------------------------------------
 * One association to a remote modality. Any thread; one association is used by one thread at
 * a time. */
typedef struct DcmScu DcmScu;

enum { DCM_SCU_ECHO = 1u, DCM_SCU_FIND = 2u, DCM_SCU_MOVE = 4u, DCM_SCU_STORE = 8u };

typedef struct DcmScuParams {
    const char *local_aet;   /* our calling AE title */
    const char *remote_aet;  /* called AE title */
    const char *host;
    int port;
    int timeout_s;           /* connection, ACSE and DIMSE timeout; 0: none */
    unsigned services;       /* DCM_SCU_* to propose */
    /* DCM_SCU_STORE: the (SOP class, stored transfer syntax) pairs to send; each class is
     * proposed with its stored syntax and with the uncompressed ones. */
    const char *const *store_classes;
    const char *const *store_syntaxes;
    size_t nstore;
} DcmScuParams;

/* Connects and negotiates. DCM_ERR_NETWORK: cannot connect, rejected (message says why), no
 * context accepted for the services asked. */
DcmScu *dcm_scu_open(DcmError *err, const DcmScuParams *p);
/* Releases the association (aborts it if it is broken); NULL is fine. */
void dcm_scu_close(DcmScu *scu);
bool dcm_scu_echo(DcmError *err, DcmScu *scu);
/* C-STORE of one file. false: network failure (the association is aborted: close it);
 * otherwise *status is the peer's (0x0122: no accepted context for this file).
 * move_aet/move_id: MoveOriginator* for C-MOVE sub-operations (NULL/0: none). */
bool dcm_scu_store(DcmError *err, DcmScu *scu, const DcmStoreFile *f, const char *move_aet,
                   uint16_t move_id, uint16_t *status);
/* C-FIND at level (0..3) with keys (QueryRetrieveLevel is added). answer() gets each pending
 * answer as a parsed object (borrowed; dcm_to_json/dcm_get_string work on it). *status: the
 * final one. false on a network failure or a failure status (message carries it). */
bool dcm_scu_find(DcmError *err, DcmScu *scu, int model, int level, const DcmQrKey *keys,
                  size_t n, void (*answer)(void *ctx, const DcmObject *obj), void *ctx,
                  uint16_t *status);
/* C-MOVE at level with keys to dest_aet. counts: final sub-operation counts. false on a
 * network failure or a failure status. */
bool dcm_scu_move(DcmError *err, DcmScu *scu, int model, int level, const DcmQrKey *keys,
                  size_t n, const char *dest_aet, uint16_t *status, DcmQrCounts *counts);
/* ---- Pixel data (dicom/dcmtk_image.cpp) -----------------------------------------------------
 * An image source is a stored file opened for frame access: the pixel data stay on disk and
 * only the frame asked for is read and decoded (native, RLE, JPEG baseline/extended/lossless,
 * JPEG-LS with DCMTK's codecs; JPEG 2000 and HTJ2K with OpenJPEG). Other encapsulated syntaxes
 * (MPEG, HEVC, deflated JPIP...) are DCM_ERR_UNSUPPORTED. A source is used by one thread at a
 * time. */
typedef struct DcmImageSource DcmImageSource;

/* Opens a file from disk (pixels read on demand) or a buffer (parsed fully; tests, fuzzing;
 * buf is borrowed only for the call). *out for dcm_image_close(). DCM_ERR_FORMAT if the file
 * cannot be read. A file without (usable) pixel data still opens: dcm_image_info and
 * dcm_image_frame then answer why not. */
bool dcm_image_open_file(DcmError *err, const char *path, DcmImageSource **out);
bool dcm_image_open_buffer(DcmError *err, const void *buf, size_t len, DcmImageSource **out);
void dcm_image_close(DcmImageSource *src); /* NULL is fine */

typedef struct DcmImageInfo {
    uint32_t width, height, frames;
    unsigned samples;          /* SamplesPerPixel: 1 or 3 */
    unsigned bits_allocated, bits_stored;
    bool is_signed;
    bool compressed;           /* encapsulated pixel data */
    char photometric[32];
    char transfer_syntax[68];
    double slope, intercept;   /* modality rescale (1 and 0 when absent) */
    bool has_window;           /* first WindowCenter / WindowWidth values */
    double window_center, window_width;
} DcmImageInfo;
/* The image description; false (DCM_ERR_FORMAT: bad values, missing pixel data, frame count
 * beyond the data present; DCM_ERR_UNSUPPORTED: syntax or layout we do not decode). */
bool dcm_image_info(DcmError *err, const DcmImageSource *src, DcmImageInfo *info);

/* One decoded frame: samples interleaved (RGB), row by row, native endian, 1, 2 or 4 bytes
 * each, holding the stored value (BitsStored bits, sign-extended when signed). Colour is
 * always RGB (YBR_FULL / YBR_FULL_422 converted, PALETTE COLOR looked up into 8-bit RGB);
 * grayscale keeps MONOCHROME1 as a flag (values are not inverted). */
typedef struct DcmFrame {
    uint32_t width, height;
    unsigned channels;         /* 1 or 3 */
    unsigned bytes;            /* per sample: 1, 2 or 4 */
    bool is_signed;
    unsigned bits_stored;
    bool monochrome1;
    void *data;                /* malloc'd, width * height * channels * bytes */
    size_t len;
} DcmFrame;
/* Decodes frame n (from 0). DCM_ERR_MISSING: no such frame. On success out->data is the
 * caller's (dcm_frame_cleanup). */
bool dcm_image_frame(DcmError *err, DcmImageSource *src, uint32_t n, DcmFrame *out);
void dcm_frame_cleanup(DcmFrame *f); /* frees data, zeroes; fine on a zeroed struct */
/* Sample `channel` of pixel `pixel` (row-major index) as a signed 64-bit value. */
int64_t dcm_frame_sample(const DcmFrame *f, size_t pixel, unsigned channel);
/* Smallest and largest sample (false for an empty frame). */
bool dcm_frame_minmax(const DcmFrame *f, int64_t *min, int64_t *max);

/* Frame n as stored: the native bytes (little endian), or the compressed fragments joined;
 * *mime "application/octet-stream", "image/jpeg", "image/jls" or "image/jp2". *buf malloc'd.
 * Works for encapsulated syntaxes we cannot decode. */
bool dcm_image_frame_raw(DcmError *err, DcmImageSource *src, uint32_t n, void **buf, size_t *len,
                         const char **mime);
/* The EncapsulatedDocument of an Encapsulated PDF instance (trailing NUL padding dropped).
 * DCM_ERR_MISSING if it is not one. */
bool dcm_image_pdf(DcmError *err, DcmImageSource *src, void **buf, size_t *len);

/* Rendering to 8 bits per sample. */
enum {
    DCM_RENDER_CLAMP = 0,        /* stored values clamped to 0..255 (slope/intercept applied) */
    DCM_RENDER_STRETCH = 1,      /* min..max of the frame (after rescale) to 0..255 */
    DCM_RENDER_WINDOW = 2,       /* window_center/width (PS3.3 C.11.2.1.2); width <= 0: stretch.
                                    8-bit RGB passes through */
    DCM_RENDER_WINDOW_FORCE = 3, /* as WINDOW, applied to RGB samples too */
};
typedef struct DcmRender {
    int mode;                    /* DCM_RENDER_* */
    double slope, intercept;     /* applied before the window (1, 0: none) */
    double window_center, window_width;
    uint32_t width, height;      /* output box (0: the frame's); the aspect ratio is kept */
    bool smooth;                 /* bilinear when resizing, else nearest */
} DcmRender;
/* MONOCHROME1 frames come out inverted (white is low). out: channels as in, bytes 1. */
bool dcm_frame_render(DcmError *err, const DcmFrame *in, const DcmRender *r, DcmFrame *out);

/* PNG (libpng; 8 or 16-bit gray/RGB frames) and JPEG (DCMTK's IJG baseline encoder; 8-bit
 * frames; quality 1..100, else 90). *buf malloc'd. */
bool dcm_frame_encode_png(DcmError *err, const DcmFrame *f, void **buf, size_t *len);
bool dcm_frame_encode_jpeg(DcmError *err, const DcmFrame *f, int quality, void **buf, size_t *len);

/* ---- DICOMDIR (dicom/dcmtk_dicomdir.cpp) -----------------------------------------------------
 * Builds <root>/DICOMDIR with DCMTK's DicomDirInterface (General Purpose profile, any transfer
 * syntax): begin, add each file (a PS3.10 file ID relative to root, e.g. "IMAGES/IM0", which
 * must exist there: a link is fine) as it is archived, end writes it. Files DCMTK cannot list
 * are counted in *skipped (logged as a warning) and left out. One thread per handle. */
typedef struct DcmDicomDir DcmDicomDir;
bool dcm_dicomdir_begin(DcmError *err, const char *root, DcmDicomDir **out);
void dcm_dicomdir_add(DcmDicomDir *d, const char *file);
bool dcm_dicomdir_end(DcmError *err, DcmDicomDir *d, size_t *skipped);
void dcm_dicomdir_free(DcmDicomDir *d); /* NULL is fine */

/* ---- Transcoding (dicom/dcmtk_transcode.cpp) ---------------------------------------------------
 * A Part-10 buffer rewritten in another transfer syntax, pixel data decoded and re-encoded as
 * needed: targets are the uncompressed syntaxes (implicit/explicit little, explicit big,
 * deflated), RLE, JPEG baseline (8-bit) and extended, JPEG lossless (process 14, SV1),
 * JPEG-LS lossless and near-lossless (deviation 2): what DCMTK encodes. Sources: anything
 * dcm_image_frame decodes. quality: for lossy JPEG (1..100, else 90). *out malloc'd.
 * DCM_ERR_UNSUPPORTED for a target or a source/layout that cannot be converted; DCM_ERR_FORMAT
 * for an unreadable file; DCM_ERR_ARG for an unknown UID. */
bool dcm_transcode(DcmError *err, const void *buf, size_t len, const char *transfer_syntax,
                   int quality, void **out, size_t *outlen);
/* true if dcm_transcode can write that transfer syntax. */
bool dcm_transcode_supported(const char *transfer_syntax);

#ifdef __cplusplus
}
#endif

#endif
