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
 */
#include "storage/sqlite/sqlite_int.h"

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

/* The whole SELECT; NULL when out of memory (sqlite3_free() it). */
static char *build_sql(sqlite3 *db, int level, const IdxFindTerm *terms, size_t nterms,
                       uint64_t since, uint64_t limit)
{
    int param = 1;
    sqlite3_str *q = sqlite3_str_new(db);
    sqlite3_str_appendall(q, "SELECT r0.public_id FROM resources r0");
    for (int d = 1; d <= level; d++)
        sqlite3_str_appendf(q, " JOIN resources r%d ON r%d.internal_id = r%d.parent_id", d, d,
                            d - 1);
    sqlite3_str_appendf(q, " WHERE r0.level = %d", level);
    for (size_t i = 0; i < nterms; i++) {
        const IdxFindTerm *t = &terms[i];
        sqlite3_str_appendf(q,
                            " AND EXISTS(SELECT 1 FROM main_tags t"
                            " WHERE t.internal_id = r%d.internal_id AND t.tag = %lld AND (",
                            t->depth, (long long)t->tag);
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
    SqlConn *c = sql_read_begin(err, be);
    if (!c)
        return false;
    char *sql = build_sql(c->db, level, terms, nterms, since, limit);
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
        for (size_t j = 0; j < terms[i].nmatch; j++)
            bind_match(s, &terms[i].match[j], &param);
    }
    ok = sql_step_strings(err, c, s, "find", ids, n);
out:
    sqlite3_finalize(s);
    sqlite3_free(sql);
    return sql_read_end(err, be, c, ok);
}
