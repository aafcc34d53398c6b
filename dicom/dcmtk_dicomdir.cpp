/* dcmtk_dicomdir.cpp -- DICOMDIR for media archives, made by DCMTK's DicomDirInterface.
 *
 * DESIGN: the caller lays the files out under a root folder (symbolic links to the stored
 * files are enough: DicomDirInterface only opens and reads them) with PS3.10 file IDs
 * ("IMAGES/IM0"); one call adds them all and writes <root>/DICOMDIR. The General Purpose
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

extern "C" bool dcm_dicomdir_write(DcmError *err, const char *root, const char *const *files, size_t n,
                                   size_t *skipped)
{
    try {
        *skipped = 0;
        std::string path = std::string(root) + "/DICOMDIR";
        DicomDirInterface dd;
        dd.enableInventMode(OFTrue);
        dd.disableTransferSyntaxCheck(OFFalse);
        dd.disableBackupMode(OFFalse);
        dd.disableResolutionCheck(OFFalse);
        dd.disableEncodingCheck(OFFalse);
        OFCondition c = dd.createNewDicomDir(DicomDirInterface::AP_GeneralPurpose, path.c_str(), "MINIPACS");
        if (c.bad()) return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot create the DICOMDIR: %s", c.text());
        for (size_t i = 0; i < n; i++) {
            c = dd.addDicomFile(files[i], root);
            if (c.bad()) {
                (*skipped)++;
                dcm_int_log(DCM_LOG_WARNING, "DICOMDIR: %s left out: %s", files[i], c.text());
            }
        }
        c = dd.writeDicomDir(EET_ExplicitLength, EGL_withoutGL);
        if (c.bad()) return dcm_int_fail(err, DCM_ERR_INTERNAL, "cannot write the DICOMDIR: %s", c.text());
        return true;
    }
    DCM_CATCH(err, false)
}

} // namespace mp
