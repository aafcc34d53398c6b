/* find.c -- the SQLite backend's search on main DICOM tags (/tools/find, /tools/lookup).
 *
 * DESIGN
 * The front has already split each constraint into alternatives (IdxFindTerm). Here they
 * become one SELECT, assembled with sqlite3_str: r0 is the resource searched, r1 its parent
 * and so on, joined as far up as the constraints reach; each term is an EXISTS on main_tags
 * of the right rN, its alternatives OR'ed. Every value is a bound parameter, numbered in the
 * order the text is written, and bound afterwards in the same walk order; so the SQL text
 * holds only numbers we produced. The statement depends on the constraints, so it is the
 * one statement of the backend prepared per call (and counted in idx_info).
 * Wildcards use GLOB ('*', '?'; the pattern's own '[' is escaped as "[[]" in SQL);
 * case-insensitive terms compare lower() of both sides (ASCII, as SQLite's lower());
 * a range's high bound is extended with char(127) so that "-20201231" includes the day's
 * DT values.
 * Index use: a term whose alternatives are all single values, or one wildcard with a literal
 * prefix ("PAT00*"), becomes "rN.internal_id IN (SELECT internal_id FROM main_tags WHERE tag
 * = T AND <bounds> AND (<the match>))", where the bounds are on lower(value), the expression
 * of the main_tags_lower index: lower(value) IN (lower(v1), ...) for single values, lower(value)
 * in [lower(prefix), next prefix) for a wildcard. The bounds are implied by the match (case
 * folded or not), so the answer is the same; the index turns a scan of every resource of the
 * level into a seek. A range seeks too when its bounds hold no letter (dates, times; see
 * no_letters()). Other terms (leading wildcards, several alternatives) keep the correlated
 * EXISTS. With any seek, r0.level is written "+r0.level" (see build_sql()).
 */
#include "storage/sqlite/sqlite_int.h"

#include <stdlib.h>
#include <string.h>

/* Appends the SQL of one alternative, numbering its parameters from *param. */
static void emit_match(sqlite3_str *q, const IdxMatch *m, bool ci, int *param)
{
    const char *col = ci ? "lower(t.value)" : "t.value";
    switch (m->kind) {
    case IDX_MATCH_RANGE:
        sqlite3_str_appendall(q, "(1");
        if (m->text)
            sqlite3_str_appendf(q, " AND t.value >= ?%d", (*param)++);
        if (m->high)
            sqlite3_str_appendf(q, " AND t.value <= ?%d || char(127)", (*param)++);
        sqlite3_str_appendall(q, ")");
        break;
    case IDX_MATCH_WILDCARD:
        sqlite3_str_appendf(q, "%s GLOB replace(%s?%d%s, '[', '[[]')", col, ci ? "lower(" : "",
                            (*param)++, ci ? ")" : "");
        break;
    case IDX_MATCH_EQUAL:
        sqlite3_str_appendf(q, ci ? "%s = lower(?%d)" : "%s = ?%d", col, (*param)++);
        break;
    }
}

/* Binds the parameters of one alternative in emit_match()'s order. */
static void bind_match(sqlite3_stmt *s, const IdxMatch *m, int *param)
{
    if (m->kind == IDX_MATCH_RANGE) {
        if (m->text)
            sql_bind_text(s, (*param)++, m->text);
        if (m->high)
            sql_bind_text(s, (*param)++, m->high);
    } else {
        sql_bind_text(s, (*param)++, m->text);
    }
}

/* The index bounds of a term (see DESIGN): lo/hi of its one wildcard's literal prefix, case
 * folded (ASCII, as SQLite's lower()), hi NULL when no upper bound can be made; or, with
 * equal set, its alternatives are all single values. false: the term does not use the index. */
typedef struct Bounds {
    bool use, equal, range;
    char *lo, *hi; /* malloc'd */
} Bounds;

/* A range bound the index can take as it is: bytes below 'A' only (digits, '.', '-', ':', ' ',
 * as dates and times are). Then value <= hi implies lower(value) <= hi, since lower() only
 * raises 'A'..'Z' to 'a'..'z', above every byte of hi; and value >= lo implies lower(value) >= lo
 * for any lo. */
static bool no_letters(const char *v)
{
    for (; v && *v; v++)
        if ((unsigned char)*v >= 'A')
            return false;
    return true;
}

static char *dup_or_null(const char *v, bool *nomem)
{
    if (!v)
        return NULL;
    char *d = strdup(v);
    if (!d)
        *nomem = true;
    return d;
}

static bool term_bounds(const IdxFindTerm *t, Bounds *b)
{
    memset(b, 0, sizeof *b);
    if (t->nmatch == 1 && t->match[0].kind == IDX_MATCH_RANGE) {
        const IdxMatch *m = &t->match[0];
        if ((!m->text && !m->high) || !no_letters(m->high))
            return true;
        bool nomem = false;
        b->lo = dup_or_null(m->text, &nomem);
        b->hi = dup_or_null(m->high, &nomem);
        if (nomem) {
            free(b->lo);
            free(b->hi);
            b->lo = b->hi = NULL;
            return false;
        }
        b->use = b->range = true;
        return true;
    }
    bool all_equal = t->nmatch > 0;
    for (size_t j = 0; j < t->nmatch; j++)
        all_equal = all_equal && t->match[j].kind == IDX_MATCH_EQUAL && t->match[j].text;
    if (all_equal) {
        b->use = b->equal = true;
        return true;
    }
    if (t->nmatch != 1 || t->match[0].kind != IDX_MATCH_WILDCARD || !t->match[0].text)
        return true;
    const char *p = t->match[0].text;
    size_t n = strcspn(p, "*?");
    if (n == 0)
        return true; /* a leading wildcard: no prefix to seek */
    b->lo = malloc(n + 1);
    b->hi = malloc(n + 1);
    if (!b->lo || !b->hi) {
        free(b->lo);
        free(b->hi);
        b->lo = b->hi = NULL;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        b->lo[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
    b->lo[n] = '\0';
    memcpy(b->hi, b->lo, n + 1);
    /* the next prefix: the last byte that can grow grows, the rest is cut */
    size_t k = n;
    while (k > 0 && (unsigned char)b->hi[k - 1] == 0xff)
        k--;
    if (k == 0) {
        free(b->hi);
        b->hi = NULL;
    } else {
        b->hi[k - 1] = (char)((unsigned char)b->hi[k - 1] + 1);
        b->hi[k] = '\0';
    }
    b->use = true;
    return true;
}

static void bounds_free(Bounds *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++) {
        free(b[i].lo);
        free(b[i].hi);
    }
    free(b);
}

/* The whole SELECT; NULL when out of memory (sqlite3_free() it). */
static char *build_sql(sqlite3 *db, int level, const IdxFindTerm *terms, size_t nterms,
                       const Bounds *bounds, uint64_t since, uint64_t limit)
{
    int param = 1;
    sqlite3_str *q = sqlite3_str_new(db);
    sqlite3_str_appendall(q, "SELECT r0.public_id FROM resources r0");
    for (int d = 1; d <= level; d++)
        sqlite3_str_appendf(q, " JOIN resources r%d ON r%d.internal_id = r%d.parent_id", d, d,
                            d - 1);
    /* With a seek on main_tags, "+" keeps SQLite from walking r0 by the level index (which it
     * picks for the ORDER BY when it has no statistics: every instance visited to answer an
     * instance search on a PatientID); it then starts from the seek's few rows and comes down
     * through resources_parent. */
    bool seek = false;
    for (size_t i = 0; i < nterms; i++)
        seek = seek || bounds[i].use;
    sqlite3_str_appendf(q, " WHERE %sr0.level = %d", seek ? "+" : "", level);
    for (size_t i = 0; i < nterms; i++) {
        const IdxFindTerm *t = &terms[i];
        const Bounds *b = &bounds[i];
        if (b->use) {
            sqlite3_str_appendf(q,
                                " AND r%d.internal_id IN (SELECT t.internal_id FROM main_tags t"
                                " WHERE t.tag = %lld AND ",
                                t->depth, (long long)t->tag);
            if (b->equal) {
                sqlite3_str_appendall(q, "lower(t.value) IN (");
                for (size_t j = 0; j < t->nmatch; j++)
                    sqlite3_str_appendf(q, "%slower(?%d)", j ? ", " : "", param++);
                sqlite3_str_appendall(q, ")");
            } else if (b->range) {
                sqlite3_str_appendall(q, "1");
                if (b->lo)
                    sqlite3_str_appendf(q, " AND lower(t.value) >= ?%d", param++);
                if (b->hi)
                    sqlite3_str_appendf(q, " AND lower(t.value) <= ?%d || char(127)", param++);
            } else {
                sqlite3_str_appendf(q, "lower(t.value) >= ?%d", param++);
                if (b->hi)
                    sqlite3_str_appendf(q, " AND lower(t.value) < ?%d", param++);
            }
            sqlite3_str_appendall(q, " AND (");
        } else {
            sqlite3_str_appendf(q,
                                " AND EXISTS(SELECT 1 FROM main_tags t"
                                " WHERE t.internal_id = r%d.internal_id AND t.tag = %lld AND (",
                                t->depth, (long long)t->tag);
        }
        for (size_t j = 0; j < t->nmatch; j++) {
            if (j)
                sqlite3_str_appendall(q, " OR ");
            emit_match(q, &t->match[j], t->case_insensitive, &param);
        }
        sqlite3_str_appendall(q, "))");
    }
    sqlite3_str_appendf(q, " ORDER BY r0.internal_id LIMIT %lld OFFSET %lld",
                        limit == 0 || limit > INT64_MAX ? -1LL : (long long)limit,
                        since > INT64_MAX ? (long long)INT64_MAX : (long long)since);
    if (sqlite3_str_errcode(q) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(q));
        return NULL;
    }
    return sqlite3_str_finish(q);
}

bool sql_find(StoError *err, void *be, int level, const IdxFindTerm *terms, size_t nterms,
              uint64_t since, uint64_t limit, char ***ids, size_t *n)
{
    sqlite3_stmt *s = NULL;
    bool ok = false;
    Bounds *bounds = calloc(nterms ? nterms : 1, sizeof *bounds);
    if (!bounds)
        return sql_nomem(err);
    for (size_t i = 0; i < nterms; i++) {
        if (!term_bounds(&terms[i], &bounds[i])) {
            bounds_free(bounds, nterms);
            return sql_nomem(err);
        }
    }
    SqlConn *c = sql_read_begin(err, be);
    if (!c) {
        bounds_free(bounds, nterms);
        return false;
    }
    char *sql = build_sql(c->db, level, terms, nterms, bounds, since, limit);
    if (!sql) {
        sql_nomem(err);
        goto out;
    }
    if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK) {
        sql_fail(err, c, "prepare find");
        goto out;
    }
    sql_count_prepare(c);
    int param = 1;
    for (size_t i = 0; i < nterms; i++) {
        const Bounds *b = &bounds[i];
        if (b->use && b->equal) {
            for (size_t j = 0; j < terms[i].nmatch; j++)
                sql_bind_text(s, param++, terms[i].match[j].text);
        } else if (b->use && b->range) {
            if (b->lo)
                sql_bind_text(s, param++, b->lo);
            if (b->hi)
                sql_bind_text(s, param++, b->hi);
        } else if (b->use) {
            sql_bind_text(s, param++, b->lo);
            if (b->hi)
                sql_bind_text(s, param++, b->hi);
        }
        for (size_t j = 0; j < terms[i].nmatch; j++)
            bind_match(s, &terms[i].match[j], &param);
    }
    ok = sql_step_strings(err, c, s, "find", ids, n);
out:
    sqlite3_finalize(s);
    sqlite3_free(sql);
    ok = sql_read_end(err, be, c, ok);
    bounds_free(bounds, nterms);
    return ok;
}
