/* assoc_check.c -- the structure of an A-ASSOCIATE-RQ or -AC PDU (PS3.8 9.3.2, 9.3.3), checked
 * before DCMTK parses it. DCMTK 3.6.7's parser (dulparse.cc) leaks the lists it has built
 * whenever it stops on a malformed item, and copies an SCP/SCU Role Selection UID into a 65-byte
 * buffer without checking its length: one hostile peer could grow the server's memory by 64
 * bytes per connection for ever, or write past a heap block. So DCMTK is handed only PDUs whose
 * every item and sub-item lies inside its parent and fits the field DCMTK copies it into;
 * anything else is answered with an A-ABORT (the listener for requests, dicom/dcmtk_scp.cpp; our
 * SCU for a remote SCP's answer, dicom/dcmtk_scu.cpp). The checks are the standard's and are at
 * least as strict as each of DCMTK's, so a PDU that passes here never takes one of DCMTK's error
 * paths. Plain C: no DCMTK type is involved. */
#include <stdarg.h>
#include <stdio.h>

#include "dicom/dicom.h"

#define UI_MAX 64 /* a UID field (DICOM_UI_LENGTH in DCMTK) */

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

__attribute__((format(printf, 3, 4)))
static bool fail(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Items (or sub-items) laid end to end: type, reserved, 16-bit length, value. */
typedef struct Walk {
    const unsigned char *p;
    size_t n;          /* bytes left */
    const char *whose; /* "presentation context", "user information"; NULL: the PDU's items */
} Walk;

/* The next item of w into *type, *len, *v: 1; 0 at the end; -1 (reason in why) when the bytes
 * left cannot hold an item header or the item runs past its container. */
static int walk_next(Walk *w, unsigned *type, unsigned *len, const unsigned char **v, char *why,
                     size_t ws)
{
    if (w->n == 0) return 0;
    if (w->n < 4) {
        if (w->whose) fail(why, ws, "%s: %u stray bytes after its sub-items", w->whose, (unsigned)w->n);
        else fail(why, ws, "%u stray bytes after the items", (unsigned)w->n);
        return -1;
    }
    *type = w->p[0];
    *len = be16(w->p + 2);
    if (*len > w->n - 4) {
        if (w->whose) fail(why, ws, "%s sub-item 0x%02x of %u bytes overruns its item", w->whose, *type, *len);
        else fail(why, ws, "item 0x%02x of %u bytes overruns the PDU", *type, *len);
        return -1;
    }
    *v = w->p + 4;
    w->p += 4 + *len;
    w->n -= 4 + *len;
    return 1;
}

/* The sub-items of a presentation context item (after its 4 bytes of ID/reserved). PS3.8
 * 9.3.2.2, 9.3.3.2: a proposed context has one or more transfer syntaxes, an accepted one has
 * one; DCMTK leaks its lists on a context without any. */
static bool check_pc(const unsigned char *p, size_t n, char *why, size_t ws)
{
    Walk w = { p, n, "presentation context" };
    unsigned type, len, ts = 0;
    const unsigned char *v;
    int r;
    while ((r = walk_next(&w, &type, &len, &v, why, ws)) > 0) {
        if ((type == 0x30 || type == 0x40) && len > UI_MAX)
            return fail(why, ws, "presentation context sub-item 0x%02x: a UID of %u bytes (at most 64)", type, len);
        if (type == 0x40) ts++;
    }
    if (r == 0 && ts == 0) return fail(why, ws, "a presentation context without a transfer syntax");
    return r == 0;
}

/* The sub-items of the user information item; ac: of an A-ASSOCIATE-AC (DCMTK reads both user
 * identity items in the form of the PDU they come in). */
static bool check_user_info(const unsigned char *p, size_t n, bool ac, char *why, size_t ws)
{
    Walk w = { p, n, "user information" };
    unsigned type, len, idents = 0;
    const unsigned char *v;
    int r;
    while ((r = walk_next(&w, &type, &len, &v, why, ws)) > 0) {
        /* PS3.7 D.3.3.7: one user identity sub-item; DCMTK leaks all but the last */
        if ((type == 0x58 || type == 0x59) && ++idents > 1)
            return fail(why, ws, "more than one user identity sub-item");
        switch (type) {
        case 0x51: /* maximum length */
            if (len != 4) return fail(why, ws, "maximum length sub-item 0x%02x of %u bytes (must be 4)", type, len);
            break;
        case 0x52: /* implementation class UID */
        case 0x55: /* implementation version name */
            if (len > UI_MAX) return fail(why, ws, "user information sub-item 0x%02x of %u bytes (at most 64)", type, len);
            break;
        case 0x54: { /* SCP/SCU role selection: UID length, UID, SCU role, SCP role */
            if (len < 4) return fail(why, ws, "role selection sub-item 0x%02x of %u bytes (at least 4)", type, len);
            unsigned uid = be16(v);
            if (uid > UI_MAX || uid + 4 != len)
                return fail(why, ws, "role selection sub-item: a UID of %u bytes in %u", uid, len);
            break;
        }
        case 0x56: { /* SOP class extended negotiation: UID length, UID, application info */
            if (len < 2) return fail(why, ws, "extended negotiation sub-item 0x%02x of %u bytes (at least 2)", type, len);
            unsigned uid = be16(v);
            if (uid > UI_MAX || uid + 2 > len)
                return fail(why, ws, "extended negotiation sub-item: a UID of %u bytes in %u", uid, len);
            break;
        }
        case 0x57: { /* SOP class common extended negotiation */
            if (len < 2) return fail(why, ws, "common extended negotiation sub-item 0x%02x of %u bytes", type, len);
            unsigned uid = be16(v);
            if (uid + 2 > len) return fail(why, ws, "common extended negotiation: a UID of %u bytes in %u", uid, len);
            break;
        }
        case 0x58:
        case 0x59: { /* user identity, request: type, response requested, primary field,
                        secondary field; answer: server response */
            if (ac) {
                if (len < 2 || be16(v) + 2u != len)
                    return fail(why, ws, "user identity answer sub-item 0x%02x of %u bytes disagrees with its field", type, len);
                break;
            }
            if (len < 6) return fail(why, ws, "user identity sub-item 0x%02x of %u bytes (at least 6)", type, len);
            unsigned prim = be16(v + 2);
            if (prim + 6 > len) return fail(why, ws, "user identity: a primary field of %u bytes in %u", prim, len);
            unsigned sec = be16(v + 4 + prim);
            if (prim + sec + 6 != len)
                return fail(why, ws, "user identity: fields of %u bytes in %u", prim + sec + 6, len);
            break;
        }
        default:
            break;
        }
    }
    return r == 0;
}

/* An AE title field as DCMTK reads it: up to the first NUL, trailing spaces dropped. PS3.8
 * 9.3.2: the value of 16 spaces ("no application name") shall not be used; DCMTK stops on such
 * a request after parsing it, again without freeing its lists. */
static bool ae_empty(const unsigned char *f)
{
    size_t n = 0;
    while (n < 16 && f[n]) n++;
    while (n > 0 && f[n - 1] == ' ') n--;
    return n == 0;
}

bool dcm_assoc_pdu_check(int pdu_type, const unsigned char *body, size_t n, char *why, size_t why_size)
{
    bool ac = pdu_type == 0x02;
    if (pdu_type != 0x01 && !ac) return fail(why, why_size, "PDU type 0x%02x is not an A-ASSOCIATE", (unsigned)pdu_type);
    /* protocol version, reserved, called AE, calling AE, reserved */
    if (n < 68) return fail(why, why_size, "A-ASSOCIATE-%s of %u bytes (at least 68)", ac ? "AC" : "RQ", (unsigned)n);
    if (!(be16(body) & 1))
        return fail(why, why_size, "protocol version 0x%04x (bit 0 must be set)", be16(body));
    /* An -AC repeats the titles of the request and they "shall not be tested" (PS3.8 9.3.3). */
    if (!ac && ae_empty(body + 4)) return fail(why, why_size, "an empty called AE title");
    if (!ac && ae_empty(body + 20)) return fail(why, why_size, "an empty calling AE title");
    Walk w = { body + 68, n - 68, NULL };
    unsigned type, len;
    const unsigned char *v;
    int r;
    while ((r = walk_next(&w, &type, &len, &v, why, why_size)) > 0) {
        switch (type) {
        case 0x10: /* application context */
            if (len > UI_MAX) return fail(why, why_size, "application context item 0x%02x of %u bytes (at most 64)", type, len);
            break;
        case 0x20: /* presentation context, proposed */
        case 0x21: /* presentation context, answered: its sub-items count only when accepted */
            if (type != (ac ? 0x21u : 0x20u))
                return fail(why, why_size, "presentation context item 0x%02x in an A-ASSOCIATE-%s", type, ac ? "AC" : "RQ");
            if (len < 4) return fail(why, why_size, "presentation context item 0x%02x of %u bytes (at least 4)", type, len);
            /* v: ID, reserved, result/reason, reserved, then the sub-items */
            if ((!ac || v[2] == 0) && !check_pc(v + 4, len - 4, why, why_size)) return false;
            break;
        case 0x50:
            if (!check_user_info(v, len, ac, why, why_size)) return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}
