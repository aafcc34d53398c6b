/* settings.c -- run-time DICOM settings; see settings.h. */
#include <fnmatch.h>
#include <string.h>

#include "dicom/dicom.h"
#include "server/settings.h"

const char *srv_default_encoding(void) { return dcm_default_encoding(); }

bool srv_set_default_encoding(SrvError *err, const char *name)
{
    DcmError de = { 0 };
    if (dcm_set_default_encoding(&de, name)) return true;
    return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "%s", de.message);
}

const char *srv_scp_syntax(size_t i) { return dcm_scp_known_syntax(i); }
uint64_t srv_scp_accepted_syntaxes(void) { return dcm_scp_accepted_syntaxes(); }
void srv_scp_set_accepted_syntaxes(uint64_t mask) { dcm_scp_set_accepted_syntaxes(mask); }
bool srv_scp_unknown_sop_class_accepted(void) { return dcm_scp_unknown_sop_class_accepted(); }
void srv_scp_set_unknown_sop_class_accepted(bool on) { dcm_scp_set_unknown_sop_class_accepted(on); }

bool srv_scp_syntax_pattern(const char *p, uint64_t *mask)
{
    if (!p) return false;
    const char *uid;
    for (size_t i = 0; (uid = dcm_scp_known_syntax(i)); i++)
        if (!fnmatch(p, uid, FNM_NOESCAPE)) *mask |= (uint64_t)1 << i;
    return true;
}
