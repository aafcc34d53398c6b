/* settings.h -- the DICOM settings Orthanc lets a client change at run time:
 * /tools/default-encoding, /tools/accepted-transfer-syntaxes, /tools/unknown-sop-class-accepted
 * (server/settings.c, over dicom/'s atomics). Any thread may call these; a change applies to
 * the files parsed and the associations negotiated afterwards. main() applies the
 * configuration's values at each start (also after /tools/reset). */
#ifndef MP_SETTINGS_H
#define MP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

/* Orthanc's name of the DefaultEncoding in force ("Latin1", "Utf8", ...). */
const char *srv_default_encoding(void);
/* Sets it by Orthanc's name (case-insensitive); SRV_PARAMETER_OUT_OF_RANGE when unknown. */
bool srv_set_default_encoding(SrvError *err, const char *name);

/* The transfer syntaxes the C-STORE SCP can take: srv_scp_syntax(0..n-1), NULL past the last
 * (n <= 64); bit i of the accepted mask accepts the i-th (default: all). */
const char *srv_scp_syntax(size_t i);
uint64_t srv_scp_accepted_syntaxes(void);
void srv_scp_set_accepted_syntaxes(uint64_t mask);
/* The syntaxes matching a UID pattern ('*', '?'), or'ed into *mask (none may match, as
 * Orthanc: the set is then empty); false if p is NULL. */
bool srv_scp_syntax_pattern(const char *p, uint64_t *mask);
/* UnknownSopClassAccepted: other abstract syntaxes are negotiated as storage classes. */
bool srv_scp_unknown_sop_class_accepted(void);
void srv_scp_set_unknown_sop_class_accepted(bool on);

#endif
