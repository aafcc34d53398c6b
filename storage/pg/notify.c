/* notify.c -- what several server processes on one database tell each other: invalidations
 * of per-process copies (LISTEN/NOTIFY), and Stable* changes logged once.
 *
 * DESIGN
 * Invalidations. A transaction that deletes or overwrites instances runs
 * pg_notify('minipacs_invalidate', <instance id>) for each; PostgreSQL delivers the
 * notifications at COMMIT only (none for a rollback), to every session LISTENing, this
 * process's own included (harmless: dropping a copy twice). Each process LISTENs on its lock
 * connection (lock_conn: the one holding its advisory locks for its whole life; nothing else
 * runs on it after open). idx_invalidations polls its socket. When that connection is lost
 * (PostgreSQL restarted), notifications sent meanwhile are lost too: the next call connects
 * again, takes the process's advisory locks again (its pending uuids and jobs are its own
 * again: other processes' claimers would otherwise take them for orphans) and answers
 * all = true, so the caller drops everything it keeps.
 *
 * Stable*. Every process that received instances of a resource has it on its own unstable
 * list and reaches its own deadline. The decision is taken in one transaction holding the
 * resource row (FOR NO KEY UPDATE: deciders take turns, stores of children are not blocked):
 * log only when LastUpdate (written by every store, whichever process) is StableAge old and
 * no such Stable* change was logged after that LastUpdate. A process whose deadline comes
 * before the resource's latest LastUpdate + StableAge is told how long to wait, so the change
 * still comes if the process that touched it last dies. Dates are "YYYYMMDDTHHMMSS" of the
 * processes' clocks (as the rest of the change log): the hosts' clocks must agree to within
 * a second, and with StableAge 0 two processes may both log one.
 */
#include "storage/pg/pg_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- invalidations ---------------------------------------------------------------------- */

bool pg_notify_invalidate(StoError *err, PgConn *c, const char *const *ids, size_t n)
{
    if (n == 0)
        return true;
    char *arr = pg_text_array(ids, n);
    if (!arr)
        return pg_nomem(err);
    const char *p[1] = {arr};
    bool ok = pg_do(err, c, P_NOTIFY, 1, p);
    free(arr);
    return ok;
}

static bool exec_bool(PGconn *conn, const char *sql, bool *value)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (value)
        *value = ok && st == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
                 strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return ok;
}

static void drop_listen_conn(PgDb *db)
{
    if (db->lock_conn)
        PQfinish(db->lock_conn);
    db->lock_conn = NULL;
}

/* lock_conn connected: takes the exclusive lock if configured, LISTENs. */
static bool locks_and_listen(StoError *err, PgDb *db)
{
    bool got = true;
    if (db->lock_exclusive &&
        (!exec_bool(db->lock_conn, "SELECT pg_try_advisory_lock(7420002)", &got) || !got)) {
        sto_set_err(err, STO_ERR_DB, "the PostgreSQL index is locked by another server "
                    "process (set \"Lock\": false in the PostgreSQL section to share it)");
        return false;
    }
    if (!exec_bool(db->lock_conn, "LISTEN minipacs_invalidate", NULL)) {
        sto_set_err(err, STO_ERR_UNAVAILABLE, "the PostgreSQL index is unavailable (listen): %s",
                    PQerrorMessage(db->lock_conn));
        return false;
    }
    return true;
}

bool pg_listen_setup(StoError *err, PgDb *db)
{
    return locks_and_listen(err, db);
}

/* The lock connection again, after it was lost: the same owner key. */
static bool reconnect(StoError *err, PgDb *db)
{
    drop_listen_conn(db);
    db->lock_conn = PQconnectdb(db->conninfo);
    if (PQstatus(db->lock_conn) != CONNECTION_OK) {
        sto_set_err(err, STO_ERR_UNAVAILABLE, "the PostgreSQL index is unavailable: %s",
                    PQerrorMessage(db->lock_conn));
        drop_listen_conn(db);
        return false;
    }
    char sql[96];
    bool got = false;
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(7420, %lld)", (long long)db->owner);
    if (!exec_bool(db->lock_conn, sql, &got) || !got) {
        sto_set_err(err, STO_ERR_DB, "cannot take this process's PostgreSQL advisory lock again");
        drop_listen_conn(db);
        return false;
    }
    if (!locks_and_listen(err, db)) {
        drop_listen_conn(db);
        return false;
    }
    return true;
}

typedef struct IdList {
    char **v;
    size_t n, cap;
} IdList;

/* Moves the notifications libpq has read into l. */
static bool take_notifies(PGconn *conn, IdList *l)
{
    PGnotify *nf;
    bool ok = true;
    while ((nf = PQnotifies(conn)) != NULL) {
        if (ok && idx_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v) &&
            (l->v[l->n] = strdup(nf->extra)) != NULL)
            l->n++;
        else
            ok = false;
        PQfreemem(nf);
    }
    return ok;
}

bool pg_invalidations(StoError *err, void *be, int timeout_ms, char ***ids, size_t *n,
                      bool *all)
{
    PgDb *db = be;
    IdList l = {0};
    bool ok = false;
    pthread_mutex_lock(&db->listen_lock);
    if (!db->lock_conn || PQstatus(db->lock_conn) != CONNECTION_OK) {
        if (!reconnect(err, db))
            goto out;
        *all = true; /* what was sent while we were away is lost */
    }
    if (!PQconsumeInput(db->lock_conn))
        goto lost;
    if (!take_notifies(db->lock_conn, &l))
        goto nomem;
    if (l.n == 0 && timeout_ms > 0) {
        struct pollfd p = {.fd = PQsocket(db->lock_conn), .events = POLLIN};
        int pr = poll(&p, 1, timeout_ms);
        if (pr < 0 && errno != EINTR)
            goto lost;
        if (pr > 0) {
            if (!PQconsumeInput(db->lock_conn))
                goto lost;
            if (!take_notifies(db->lock_conn, &l))
                goto nomem;
        }
    }
    ok = true;
    goto out;
lost:
    sto_set_err(err, STO_ERR_UNAVAILABLE, "the PostgreSQL index is unavailable (listen): %s",
                PQerrorMessage(db->lock_conn));
    drop_listen_conn(db);
    goto out;
nomem:
    pg_nomem(err);
out:
    pthread_mutex_unlock(&db->listen_lock);
    if (!ok) {
        idx_strings_free(l.v, l.n);
        return false;
    }
    *ids = l.v;
    *n = l.n;
    return true;
}

/* ---- Stable* once ----------------------------------------------------------------------- */

typedef struct StableCtx {
    const char *type, *id;
    int level, age;
    bool *logged;
    int *wait_s;
} StableCtx;

/* "YYYYMMDDTHHMMSS" (UTC) -> seconds; -1 when not that. */
static time_t parse_date(const char *s)
{
    struct tm tm = {0};
    if (strlen(s) != 15 || s[8] != 'T' ||
        sscanf(s, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static bool stable_once(StoError *err, PgConn *c, void *ctx)
{
    StableCtx *s = ctx;
    *s->logged = false;
    *s->wait_s = 0;
    char lv[4];
    snprintf(lv, sizeof lv, "%d", s->level);
    const char *p[3] = {s->id, s->type, lv};
    PGresult *r = pg_run(err, c, P_STABLE_CHECK, 3, p);
    if (!r)
        return false;
    if (PQntuples(r) == 0) {
        PQclear(r);
        sto_set_err(err, STO_ERR_NOT_FOUND, "unknown %s %s", idx_level_name(s->level), s->id);
        return false;
    }
    time_t last = parse_date(PQgetvalue(r, 0, 0));
    bool done = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    if (done)
        return true; /* another process logged it after the last update */
    time_t now = time(NULL);
    if (last >= 0 && now - last < s->age) {
        *s->wait_s = (int)(s->age - (now - last));
        return true; /* updated since by another process: not stable yet */
    }
    char date[16];
    idx_now(date);
    if (!pg_log_change(err, c, s->type, s->level, s->id, date))
        return false;
    *s->logged = true;
    return true;
}

bool pg_change_add_stable(StoError *err, void *be, const char *type, int level,
                          const char *id, int stable_age, bool *logged, int *wait_s)
{
    StableCtx s = {type, id, level, stable_age, logged, wait_s};
    return pg_tx(err, be, true, stable_once, &s);
}
