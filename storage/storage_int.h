/* storage_int.h -- shared by area.c and index.c, not part of the module's API. */
#ifndef MP_STORAGE_INT_H
#define MP_STORAGE_INT_H

#include "storage/storage.h"

/* Fills err (if not NULL) with code and a formatted message. */
void sto_set_err(StoError *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
