/* dcmtk_dicomdir.cpp -- DICOMDIR for media archives, made by DCMTK's DicomDirInterface.
 *
 * DESIGN: the caller lays the files out under a root folder (symbolic links to the stored
 * files are enough: DicomDirInterface only opens and reads them) with PS3.10 file IDs
 * ("IMAGES/IM0"), adds each as it is archived (so the work is spread over the stream) and
 * writes <root>/DICOMDIR at the end. The General Purpose
 * profile is used with the transfer syntax check off (compressed files are listed as they are,
 * as Orthanc does), invent mode on (missing type 1 attributes get values instead of failing),
 * and no backup file. A file DCMTK refuses (no meta header, not an image/SR/... SOP class it
 * knows) is left out of the DICOMDIR and counted in *skipped; it still goes into the archive.
 */
#include "dicom/dicom_int.h"

#include "dcmtk/dcmdata/dcddirif.h"

#include <cstring>

namespace mp {

#define DCM_CATCH(err, retval) \
    catch (const std::bad_alloc &) { dcm_int_fail(err, DCM_ERR_NOMEM, "out of memory"); return retval; } \
    catch (const std::exception &ex) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error: %s", ex.what()); return retval; } \
    catch (...) { dcm_int_fail(err, DCM_ERR_INTERNAL, "internal error (unknown exception)"); return retval; }

struct DcmDicomDir {
    DicomDirInterface dd;
    std::string root;
    size_t skipped = 0;
};

extern "C" bool dcm_dicomdir_begin(DcmError *err, const char *root, DcmDicomDir **out)
{
    try {
        *out = nullptr;
        std::unique_ptr<DcmDicomDir> d(new DcmDicomDir);
        d->root = root;
        std::string path = d->root + "/DICOMDIR";
        d->dd.enableInventMode(OFTrue);
        d->dd.disableTransferSyntaxCheck(OFFalse);
        d->dd.disableBackupMode(OFFalse);
        d->dd.disableResolutionCheck(OFFalse);
        d->dd.disableEncodingCheck(OFFalse);
        OFCondition c = d->dd.createNewDicomDir(DicomDirInterface::AP_GeneralPurpose, path.c_str(), "MINIPACS");
        if (c.bad()) return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot create the DICOMDIR: %s", c.text());
        *out = d.release();
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_dicomdir_add(DcmDicomDir *d, const char *file)
{
    try {
        OFCondition c = d->dd.addDicomFile(file, d->root.c_str());
        if (c.bad()) {
            d->skipped++;
            dcm_int_log(DCM_LOG_WARNING, "DICOMDIR: %s left out: %s", file, c.text());
        }
    } catch (...) {
        d->skipped++;
    }
}

extern "C" bool dcm_dicomdir_end(DcmError *err, DcmDicomDir *d, size_t *skipped)
{
    try {
        *skipped = d->skipped;
        OFCondition c = d->dd.writeDicomDir(EET_ExplicitLength, EGL_withoutGL);
        if (c.bad()) return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot write the DICOMDIR: %s", c.text());
        return true;
    }
    DCM_CATCH(err, false)
}

extern "C" void dcm_dicomdir_free(DcmDicomDir *d)
{
    try {
        delete d;
    } catch (...) {
    }
}

} // namespace mp
