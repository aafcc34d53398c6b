/* test_storage.c -- unit tests of storage/: the storage area (files) and the index.
 * Each test works in its own temporary directory (mkdtemp), removed at the end.
 *
 * The index tests run on SQLite, and again on PostgreSQL when MP_TEST_PG_DIR names a running
 * throw-away cluster (ctest's test_storage_pg: tests/tools/pg.sh run starts one): each test's
 * index is then a database of its own, named after its temporary folder and dropped with it.
 * A few tests are one backend's own (the SQLite file's schema revision; several processes on
 * one PostgreSQL database, played by several handles). */
#include "storage/storage.h"
#include "tests/check.h"

#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- fixtures --------------------------------------------------------------------------- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/mp-test-storage-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(2);
    }
    return strdup(d);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    chmod(path, 0755);
    return remove(path);
}

/* ---- the backend under test ----------------------------------------------------------------- */

static const char *pg_dir;  /* NULL: SQLite */
static char pg_port[16];
static char cur_dbname[48]; /* PostgreSQL: the database open_db opened last */

static bool on_pg(void) { return pg_dir != NULL; }

/* The database of a test folder "/tmp/mp-test-storage-AbC123": "ut_abc123". */
static void pg_name(const char *dir, char out[48])
{
    const char *b = strrchr(dir, '-');
    b = b ? b + 1 : dir;
    size_t k = (size_t)snprintf(out, 48, "ut_");
    for (; *b && k < 47; b++)
        if (isalnum((unsigned char)*b))
            out[k++] = (char)tolower((unsigned char)*b);
    out[k] = '\0';
}

static void pg_conninfo(char *out, size_t size, const char *dbname)
{
    snprintf(out, size, "host=%s port=%s user=postgres dbname=%s application_name=test_storage",
             pg_dir, pg_port, dbname);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Runs one statement on the cluster's "postgres" database. */
static bool pg_admin(const char *sql, bool quiet)
{
    char ci[512];
    pg_conninfo(ci, sizeof ci, "postgres");
    PGconn *c = PQconnectdb(ci);
    PQsetNoticeProcessor(c, quiet_notice, NULL); /* "does not exist, skipping" */
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok && !quiet)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

/* The index of a test folder on the backend under test (again after idx_close: same data). */
static IdxDb *open_db_lock(StoError *err, const char *dir, bool lock)
{
    if (!pg_dir)
        return idx_open(err, dir);
    char name[48], sql[96], ci[512];
    pg_name(dir, name);
    snprintf(cur_dbname, sizeof cur_dbname, "%s", name);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_admin(sql, true); /* already there after a reopen */
    pg_conninfo(ci, sizeof ci, name);
    IdxOptions o = {.backend = IDX_BACKEND_POSTGRESQL, .pg_conninfo = ci, .pg_connections = 4,
                    .pg_connect_retries = 1, .pg_lock = lock};
    return idx_open_with(err, &o);
}

static IdxDb *open_db(StoError *err, const char *dir)
{
    return open_db_lock(err, dir, false);
}

static void rm_tree(char *dir)
{
    if (pg_dir) {
        char name[48], sql[128];
        pg_name(dir, name);
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        pg_admin(sql, false);
    }
    chmod(dir, 0755);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A synthetic instance: IDs are "P<p>", "P<p>S<s>", ... so each chain is distinct. */
typedef struct Fake {
    char ids[IDX_LEVELS][IDX_ID_LEN];
    char uuid[STO_UUID_LEN];
    char values[IDX_LEVELS][2][64];
    IdxTag tags[IDX_LEVELS][2];
    IdxMeta meta[IDX_LEVELS][1];
    IdxNewInstance in;
} Fake;

static void fake_init(Fake *f, int p, int s, int r, int i, uint64_t size)
{
    memset(f, 0, sizeof *f);
    snprintf(f->ids[0], IDX_ID_LEN, "P%d", p);
    snprintf(f->ids[1], IDX_ID_LEN, "P%dS%d", p, s);
    snprintf(f->ids[2], IDX_ID_LEN, "P%dS%dR%d", p, s, r);
    snprintf(f->ids[3], IDX_ID_LEN, "P%dS%dR%dI%d", p, s, r, i);
    sto_uuid_new(f->uuid);
    static const uint32_t keys[IDX_LEVELS][2] = {
        {0x00100020, 0x00100010}, /* unsorted on purpose: read-back sorts by tag */
        {0x0020000d, 0x00080020},
        {0x0020000e, 0x00080060},
        {0x00080018, 0x00200013},
    };
    static const char *const meta_names[IDX_LEVELS] = {"PatMeta", "StudyMeta", "RemoteAET",
                                                       "ReceptionDate"};
    for (int l = 0; l < IDX_LEVELS; l++) {
        for (int k = 0; k < 2; k++) {
            snprintf(f->values[l][k], sizeof f->values[l][k], "%s-v%d", f->ids[l], k);
            f->tags[l][k].tag = keys[l][k];
            f->tags[l][k].value = f->values[l][k];
        }
        f->meta[l][0].name = meta_names[l];
        f->meta[l][0].value = f->ids[l];
        f->in.ids[l] = f->ids[l];
        f->in.tags[l] = f->tags[l];
        f->in.ntags[l] = 2;
        f->in.meta[l] = f->meta[l];
        f->in.nmeta[l] = 1;
    }
    f->in.uuid = f->uuid;
    f->in.size = size;
    f->in.md5 = "0123456789abcdef0123456789abcdef";
}

/* What ingest does: pending first, then the row (the file write is skipped here). */
static bool fake_store(IdxDb *db, Fake *f, IdxStoreResult *res)
{
    StoError err = {0};
    if (!idx_pending_add(&err, db, f->uuid)) {
        fprintf(stderr, "pending_add: %s\n", err.message);
        return false;
    }
    if (!idx_store_instance(&err, db, &f->in, res)) {
        fprintf(stderr, "store: %s\n", err.message);
        return false;
    }
    return true;
}

/* Every pending uuid of the index, whoever noted it. idx_pending_list on SQLite (one process).
 * On PostgreSQL idx_pending_list answers only the orphans (those of processes that are gone,
 * test_storage_pg_owners), so the rows are read from the table of the test's database. */
static bool pending_rows(IdxDb *db, IdxPending **p, size_t *n)
{
    StoError err = {0};
    if (!pg_dir) {
        if (!idx_pending_list(&err, db, p, n))
            fprintf(stderr, "pending_list: %s\n", err.message);
        return err.code == 0;
    }
    char ci[512];
    pg_conninfo(ci, sizeof ci, cur_dbname);
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQexec(c, "SELECT p.uuid, EXISTS(SELECT 1 FROM attachments a WHERE a.uuid = p.uuid)"
                            " OR EXISTS(SELECT 1 FROM user_attachments u WHERE u.uuid = p.uuid)"
                            " FROM pending p ORDER BY p.uuid");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    *p = NULL;
    *n = 0;
    if (ok && PQntuples(r) > 0) {
        *n = (size_t)PQntuples(r);
        *p = calloc(*n, sizeof **p);
        for (size_t i = 0; *p && i < *n; i++) {
            snprintf((*p)[i].uuid, sizeof (*p)[i].uuid, "%s", PQgetvalue(r, (int)i, 0));
            (*p)[i].referenced = strcmp(PQgetvalue(r, (int)i, 1), "t") == 0;
        }
        ok = *p != NULL;
    }
    if (!ok)
        fprintf(stderr, "pending rows: %s\n", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

static size_t pending_count(IdxDb *db, const char *uuid, bool *referenced)
{
    IdxPending *p = NULL;
    size_t n = 0, found = 0;
    CHECK(pending_rows(db, &p, &n));
    for (size_t i = 0; i < n; i++) {
        if (!uuid || strcmp(p[i].uuid, uuid) == 0) {
            found++;
            if (referenced)
                *referenced = p[i].referenced;
        }
    }
    free(p);
    return found;
}

/* ---- storage area ------------------------------------------------------------------------ */

static void test_storage_uuid(void)
{
    char a[STO_UUID_LEN], b[STO_UUID_LEN];
    sto_uuid_new(a);
    sto_uuid_new(b);
    CHECK(strlen(a) == 36);
    CHECK(sto_uuid_valid(a));
    CHECK(sto_uuid_valid(b));
    CHECK(strcmp(a, b) != 0);
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
    CHECK(sto_uuid_valid("0123abcd-ef01-4567-89ab-cdef01234567"));
    CHECK(sto_uuid_valid("0123ABCD-EF01-4567-89AB-CDEF01234567"));
    CHECK(!sto_uuid_valid(NULL));
    CHECK(!sto_uuid_valid(""));
    CHECK(!sto_uuid_valid("0123abcd-ef01-4567-89ab-cdef0123456"));   /* 35 */
    CHECK(!sto_uuid_valid("0123abcd-ef01-4567-89ab-cdef012345678")); /* 37 */
    CHECK(!sto_uuid_valid("0123abcd-ef01-4567-89ab-cdef0123456g"));
    CHECK(!sto_uuid_valid("0123abcd0ef01-4567-89ab-cdef01234567"));
    CHECK(!sto_uuid_valid("0123abc-def01-4567-89ab-cdef01234567"));
    CHECK(!sto_uuid_valid("../../../../etc/passwd/aaaaaaaaaaaaaa"));
    CHECK(!sto_uuid_valid("0123abcd-ef01-4567-89ab-cdef0123/567"));
    CHECK(!sto_uuid_valid("0123abcd-ef01-4567-89ab-cdef01234567/"));
}

static void test_storage_area_roundtrip(void)
{
    char *dir = make_tmpdir();
    char sub[4096], path[4096], tmp[4300], uuid[STO_UUID_LEN];
    StoError err = {0};
    snprintf(sub, sizeof sub, "%s/a/b/storage", dir); /* mkdir -p */
    StoArea *area = sto_area_open(&err, sub, true);
    CHECK(area != NULL);
    if (!area)
        goto out;

    static const char data[] = "DICM some bytes\0with a NUL";
    sto_uuid_new(uuid);
    CHECK(sto_area_write(&err, area, uuid, data, sizeof data));
    sto_area_path(area, uuid, path, sizeof path);
    char expect[4300];
    snprintf(expect, sizeof expect, "%s/%.2s/%.2s/%s", sub, uuid, uuid + 2, uuid);
    CHECK_STR(path, expect);
    CHECK(exists(path));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!exists(tmp));

    void *buf = NULL;
    size_t len = 0;
    CHECK(sto_area_read(&err, area, uuid, &buf, &len));
    CHECK(len == sizeof data && buf && memcmp(buf, data, len) == 0);
    free(buf);

    uint64_t size = 0;
    int fd = sto_area_open_fd(&err, area, uuid, &size);
    CHECK(fd >= 0);
    CHECK(size == sizeof data);
    if (fd >= 0) {
        CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        close(fd);
    }

    /* empty file */
    char empty[STO_UUID_LEN];
    sto_uuid_new(empty);
    CHECK(sto_area_write(&err, area, empty, "", 0));
    CHECK(sto_area_read(&err, area, empty, &buf, &len));
    CHECK(len == 0);
    free(buf);

    CHECK(sto_area_remove(&err, area, uuid));
    CHECK(!exists(path));
    CHECK(sto_area_remove(&err, area, uuid)); /* missing is fine */
    err.code = 0;
    CHECK(!sto_area_read(&err, area, uuid, &buf, &len));
    CHECK(err.code == STO_ERR_NOT_FOUND);
    CHECK(sto_area_open_fd(&err, area, uuid, &size) < 0);
    CHECK(err.code == STO_ERR_NOT_FOUND);

    err.code = 0;
    CHECK(!sto_area_write(&err, area, "../../etc/passwd", data, 4));
    CHECK(err.code == STO_ERR_ARG);
    CHECK(!sto_area_read(&err, area, "0123abcd-ef01-4567-89ab-cdef0123/567", &buf, &len));
    CHECK(err.code == STO_ERR_ARG);

    /* without sync too */
    StoArea *nosync = sto_area_open(&err, sub, false);
    sto_uuid_new(uuid);
    CHECK(nosync && sto_area_write(&err, nosync, uuid, data, sizeof data));
    CHECK(nosync && sto_area_read(&err, nosync, uuid, &buf, &len) && len == sizeof data);
    free(buf);
    sto_area_close(nosync);
out:
    sto_area_close(area);
    rm_tree(dir);
}

static void test_storage_area_failure(void)
{
    char *dir = make_tmpdir();
    char path[4096], tmp[4300], uuid[STO_UUID_LEN];
    StoError err = {0};
    StoArea *area = sto_area_open(&err, dir, true);
    CHECK(area != NULL);
    if (!area)
        goto out;

    /* rename fails (the final name is a non-empty folder): no temp file may remain. */
    sto_uuid_new(uuid);
    sto_area_path(area, uuid, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/x", path);
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/%.2s", dir, uuid);
    mkdir(folder, 0755);
    snprintf(folder, sizeof folder, "%s/%.2s/%.2s", dir, uuid, uuid + 2);
    mkdir(folder, 0755);
    CHECK(mkdir(path, 0755) == 0);
    CHECK(mkdir(tmp, 0755) == 0);
    CHECK(!sto_area_write(&err, area, uuid, "abc", 3));
    CHECK(err.code == STO_ERR_IO);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!exists(tmp));

    /* a read-only area (only meaningful when not root: root ignores permissions) */
    if (geteuid() != 0) {
        char ro[4096];
        snprintf(ro, sizeof ro, "%s/ro", dir);
        StoArea *roa = sto_area_open(&err, ro, true);
        CHECK(roa != NULL);
        CHECK(chmod(ro, 0555) == 0);
        sto_uuid_new(uuid);
        err.code = 0;
        CHECK(roa && !sto_area_write(&err, roa, uuid, "abc", 3));
        CHECK(err.code == STO_ERR_IO);
        if (roa) {
            sto_area_path(roa, uuid, path, sizeof path);
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            CHECK(!exists(path) && !exists(tmp));
        }
        sto_area_close(roa);
    } else {
        fprintf(stderr, "     (running as root: read-only folder case skipped)\n");
    }
out:
    sto_area_close(area);
    rm_tree(dir);
}

/* ---- index ------------------------------------------------------------------------------ */

static void test_storage_store_levels(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;

    Fake f;
    fake_init(&f, 1, 1, 1, 1, 1000);
    IdxStoreResult res;
    CHECK(idx_pending_add(&err, db, f.uuid));
    CHECK(pending_count(db, f.uuid, NULL) == 1);
    CHECK(idx_store_instance(&err, db, &f.in, &res));
    CHECK(!res.already_stored);
    for (int l = 0; l < IDX_LEVELS; l++)
        CHECK(res.created[l]);
    CHECK(res.nold_files == 0 && res.old_files == NULL);
    CHECK(pending_count(db, f.uuid, NULL) == 0);

    IdxChange *ch = NULL;
    size_t n = 0;
    bool done = false;
    int64_t last = 0;
    CHECK(idx_changes(&err, db, 0, 0, &ch, &n, &done, &last));
    CHECK(n == 4);
    if (n == 4) {
        static const char *const want[4] = {"NewInstance", "NewSeries", "NewStudy", "NewPatient"};
        for (int i = 0; i < 4; i++) {
            CHECK_STR(ch[i].type, want[i]);
            CHECK(ch[i].level == 3 - i);
            CHECK_STR(ch[i].id, f.ids[3 - i]);
            CHECK(strlen(ch[i].date) == 15 && ch[i].date[8] == 'T');
            if (i)
                CHECK(ch[i].seq > ch[i - 1].seq);
        }
        CHECK(ch[0].seq == res.change_seq);
        CHECK(last == ch[3].seq);
    }
    CHECK(done);
    free(ch);

    /* a second instance in the same series creates only the instance */
    Fake g;
    fake_init(&g, 1, 1, 1, 2, 500);
    CHECK(fake_store(db, &g, &res));
    CHECK(res.created[IDX_INSTANCE] && !res.created[IDX_SERIES] && !res.created[IDX_STUDY] &&
          !res.created[IDX_PATIENT]);
    CHECK(idx_changes(&err, db, last, 0, &ch, &n, &done, &last));
    CHECK(n == 1 && ch && strcmp(ch[0].type, "NewInstance") == 0);
    free(ch);

    IdxTotals t;
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[0] == 1 && t.count[1] == 1 && t.count[2] == 1 && t.count[3] == 2);
    CHECK(t.disk_size == 1500 && t.uncompressed_size == 1500);

    /* schema version and persistence across reopen */
    idx_close(db);
    db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[3] == 2);

    /* bad input */
    Fake bad;
    fake_init(&bad, 9, 9, 9, 9, 1);
    bad.in.uuid = "not-a-uuid";
    err.code = 0;
    CHECK(!idx_store_instance(&err, db, &bad.in, &res));
    CHECK(err.code == STO_ERR_ARG);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_already_stored(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f, again;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 100);
    CHECK(fake_store(db, &f, &res));
    int64_t seq = res.change_seq;

    fake_init(&again, 1, 1, 1, 1, 999); /* same IDs, new file */
    CHECK(fake_store(db, &again, &res));
    CHECK(res.already_stored);
    for (int l = 0; l < IDX_LEVELS; l++)
        CHECK(!res.created[l]);
    CHECK(res.nold_files == 0 && res.old_files == NULL);
    /* the new file stays pending (unreferenced) until the caller removes it and clears it */
    bool referenced = true;
    CHECK(pending_count(db, again.uuid, &referenced) == 1);
    CHECK(!referenced);
    const char *u = again.uuid;
    CHECK(idx_pending_clear(&err, db, &u, 1));
    CHECK(pending_count(db, NULL, NULL) == 0);

    IdxTotals t;
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[3] == 1 && t.disk_size == 100);
    IdxChange *ch = NULL;
    size_t n = 0;
    int64_t last;
    CHECK(idx_changes_last(&err, db, &ch, &n, &last));
    CHECK(n == 1 && ch && last == ch[0].seq && ch[0].seq == seq + 3);
    free(ch);
    IdxResource r;
    CHECK(idx_resource_get(&err, db, IDX_INSTANCE, f.ids[3], &r));
    CHECK_STR(r.uuid, f.uuid);
    idx_resource_cleanup(&r);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_overwrite(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f, g;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 100);
    CHECK(fake_store(db, &f, &res));
    fake_init(&g, 1, 1, 1, 1, 250);
    g.in.overwrite = true;
    g.values[3][0][0] = 'X'; /* a changed tag */
    CHECK(fake_store(db, &g, &res));
    CHECK(!res.already_stored);
    /* As Orthanc: the old instance is deleted with the parents it left empty, then stored
     * anew: every level is created again and its New* change logged again. */
    CHECK(res.nold_files == 1 && res.old_files && strcmp(res.old_files[0].uuid, f.uuid) == 0);
    free(res.old_files);
    for (int l = 0; l < IDX_LEVELS; l++)
        CHECK(res.created[l]);
    bool referenced = true;
    CHECK(pending_count(db, f.uuid, &referenced) == 1);
    CHECK(!referenced);
    CHECK(pending_count(db, g.uuid, NULL) == 0);

    IdxResource r;
    CHECK(idx_resource_get(&err, db, IDX_INSTANCE, f.ids[3], &r));
    CHECK_STR(r.uuid, g.uuid);
    CHECK(r.file_size == 250);
    CHECK(r.ntags == 2);
    if (r.ntags == 2)
        CHECK(r.tag_values[0][0] == 'X');
    CHECK(r.nmeta == 1);
    idx_resource_cleanup(&r);

    IdxTotals t;
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[0] == 1 && t.count[3] == 1 && t.disk_size == 250);
    IdxChange *ch = NULL;
    size_t n = 0;
    int64_t last;
    CHECK(idx_changes_last(&err, db, &ch, &n, &last));
    CHECK(n == 1 && ch && strcmp(ch[0].type, "NewPatient") == 0);
    free(ch);
    IdxChange *all = NULL;
    bool done = false;
    CHECK(idx_changes(&err, db, 0, 100, &all, &n, &done, &last));
    /* the first store's four changes went with the deleted rows: only the second store's */
    CHECK(n == 4 && all && all[0].seq == res.change_seq && strcmp(all[0].type, "NewInstance") == 0 &&
          strcmp(all[1].type, "NewSeries") == 0 && strcmp(all[3].type, "NewPatient") == 0);
    free(all);

    /* A second instance in the series: overwriting the first one keeps the series. */
    Fake h, k;
    fake_init(&h, 1, 1, 1, 2, 40);
    CHECK(fake_store(db, &h, &res));
    fake_init(&k, 1, 1, 1, 1, 60);
    k.in.overwrite = true;
    CHECK(fake_store(db, &k, &res));
    CHECK(res.nold_files == 1 && res.old_files && strcmp(res.old_files[0].uuid, g.uuid) == 0);
    free(res.old_files);
    CHECK(res.created[IDX_INSTANCE] && !res.created[IDX_SERIES] && !res.created[IDX_PATIENT]);
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[0] == 1 && t.count[2] == 1 && t.count[3] == 2 && t.disk_size == 100);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_readback(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f[4];
    IdxStoreResult res;
    fake_init(&f[0], 1, 1, 1, 1, 10);
    fake_init(&f[1], 1, 2, 1, 1, 20); /* second study */
    fake_init(&f[2], 1, 1, 1, 2, 30); /* second instance of the first series */
    fake_init(&f[3], 1, 1, 2, 1, 40); /* second series of the first study */
    for (int i = 0; i < 4; i++)
        CHECK(fake_store(db, &f[i], &res));

    IdxResource r;
    CHECK(idx_resource_get(&err, db, IDX_PATIENT, "P1", &r));
    CHECK(r.level == IDX_PATIENT);
    CHECK_STR(r.id, "P1");
    CHECK_STR(r.parent_id, "");
    CHECK(r.nchildren == 2);
    if (r.nchildren == 2) {
        CHECK_STR(r.children[0], "P1S1");
        CHECK_STR(r.children[1], "P1S2");
    }
    CHECK(r.ntags == 2);
    if (r.ntags == 2) {
        CHECK(r.tag_keys[0] == 0x00100010 && r.tag_keys[1] == 0x00100020);
        CHECK_STR(r.tag_values[0], "P1-v1");
        CHECK_STR(r.tag_values[1], "P1-v0");
    }
    CHECK(r.nmeta == 2);
    if (r.nmeta == 2) {
        CHECK_STR(r.meta_names[0], "LastUpdate");
        CHECK_STR(r.meta_names[1], "PatMeta");
    }
    const char *lu = idx_resource_metadata(&r, "LastUpdate");
    CHECK(lu && strlen(lu) == 15 && lu[8] == 'T');
    CHECK_STR(idx_resource_metadata(&r, "PatMeta"), "P1");
    CHECK(idx_resource_metadata(&r, "Nope") == NULL);
    idx_resource_cleanup(&r);
    idx_resource_cleanup(&r); /* twice is fine */

    CHECK(idx_resource_get(&err, db, IDX_STUDY, "P1S1", &r));
    CHECK_STR(r.parent_id, "P1");
    CHECK(r.nchildren == 2);
    if (r.nchildren == 2) {
        CHECK_STR(r.children[0], "P1S1R1");
        CHECK_STR(r.children[1], "P1S1R2");
    }
    idx_resource_cleanup(&r);

    CHECK(idx_resource_get(&err, db, -1, "P1S1R1", &r));
    CHECK(r.level == IDX_SERIES);
    CHECK(r.nchildren == 2);
    if (r.nchildren == 2) {
        CHECK_STR(r.children[0], "P1S1R1I1");
        CHECK_STR(r.children[1], "P1S1R1I2");
    }
    CHECK_STR(idx_resource_metadata(&r, "RemoteAET"), "P1S1R1");
    CHECK(idx_resource_metadata(&r, "LastUpdate") != NULL);
    idx_resource_cleanup(&r);

    CHECK(idx_resource_get(&err, db, IDX_INSTANCE, "P1S1R1I2", &r));
    CHECK_STR(r.parent_id, "P1S1R1");
    CHECK(r.nchildren == 0);
    CHECK_STR(r.uuid, f[2].uuid);
    CHECK(r.file_size == 30);
    CHECK_STR(r.md5, "0123456789abcdef0123456789abcdef");
    CHECK_STR(idx_resource_metadata(&r, "ReceptionDate"), "P1S1R1I2");
    CHECK(idx_resource_metadata(&r, "LastUpdate") == NULL);
    CHECK(r.ntags == 2 && r.tag_keys[0] == 0x00080018);
    idx_resource_cleanup(&r);

    err.code = 0;
    CHECK(!idx_resource_get(&err, db, IDX_STUDY, "P1", &r)); /* wrong level */
    CHECK(err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_resource_get(&err, db, -1, "nope", &r));
    CHECK(err.code == STO_ERR_NOT_FOUND);

    /* instances_of and counts */
    IdxFile *files = NULL;
    size_t n = 0;
    CHECK(idx_instances_of(&err, db, IDX_PATIENT, "P1", &files, &n));
    CHECK(n == 4);
    if (n == 4) {
        for (int i = 0; i < 4; i++) {
            CHECK_STR(files[i].id, f[i].ids[3]); /* insertion order */
            CHECK_STR(files[i].uuid, f[i].uuid);
            CHECK(files[i].size == f[i].in.size);
        }
    }
    free(files);
    CHECK(idx_instances_of(&err, db, IDX_INSTANCE, "P1S2R1I1", &files, &n));
    CHECK(n == 1 && strcmp(files[0].uuid, f[1].uuid) == 0);
    free(files);
    CHECK(!idx_instances_of(&err, db, IDX_SERIES, "P1S2R1I1", &files, &n));
    CHECK(err.code == STO_ERR_NOT_FOUND && files == NULL && n == 0);

    IdxCounts cnt;
    CHECK(idx_resource_counts(&err, db, IDX_PATIENT, "P1", &cnt));
    CHECK(cnt.studies == 2 && cnt.series == 3 && cnt.instances == 4 && cnt.disk_size == 100);
    CHECK(idx_resource_counts(&err, db, IDX_STUDY, "P1S1", &cnt));
    CHECK(cnt.studies == 1 && cnt.series == 2 && cnt.instances == 3 && cnt.disk_size == 80);
    CHECK(idx_resource_counts(&err, db, IDX_INSTANCE, "P1S1R2I1", &cnt));
    CHECK(cnt.series == 0 && cnt.instances == 1 && cnt.disk_size == 40);

    /* metadata set / delete */
    CHECK(idx_metadata_set(&err, db, IDX_STUDY, "P1S1", "1024", "user value"));
    CHECK(idx_metadata_set(&err, db, IDX_STUDY, "P1S1", "1024", "changed"));
    CHECK(idx_resource_get(&err, db, IDX_STUDY, "P1S1", &r));
    CHECK_STR(idx_resource_metadata(&r, "1024"), "changed");
    CHECK(r.nmeta == 3 && strcmp(r.meta_names[0], "1024") == 0);
    idx_resource_cleanup(&r);
    CHECK(idx_metadata_delete(&err, db, IDX_STUDY, "P1S1", "1024"));
    CHECK(!idx_metadata_delete(&err, db, IDX_STUDY, "P1S1", "1024"));
    CHECK(err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_metadata_set(&err, db, IDX_SERIES, "P1S1", "x", "y"));
    CHECK(err.code == STO_ERR_NOT_FOUND);
out:
    idx_close(db);
    rm_tree(dir);
}

/* Several resources in one snapshot (the query engine's batches): each part only when asked,
 * children listed or only counted, an absent or other-level ID left zeroed, the same rows as
 * idx_resource_get. */
static void test_storage_resources_get(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f[4];
    IdxStoreResult res;
    fake_init(&f[0], 1, 1, 1, 1, 10);
    fake_init(&f[1], 1, 2, 1, 1, 20);
    fake_init(&f[2], 1, 1, 1, 2, 30);
    fake_init(&f[3], 1, 1, 2, 1, 40);
    for (int i = 0; i < 4; i++)
        CHECK(fake_store(db, &f[i], &res));
    const char *ids[] = {"P1S2", "nope", "P1S1", "P1S1R1"}; /* the last is a series */
    IdxResource r[4];
    CHECK(idx_resources_get(&err, db, IDX_STUDY, ids, 4, IDX_GET_TAGS | IDX_GET_CHILDREN, r));
    CHECK_STR(r[0].id, "P1S2");
    CHECK_STR(r[0].parent_id, "P1");
    CHECK(r[0].ntags == 2 && r[0].nmeta == 0 && r[0].nchildren == 1);
    CHECK_STR(r[1].id, "");
    CHECK(r[1].ntags == 0 && r[1].children == NULL);
    CHECK_STR(r[2].id, "P1S1");
    CHECK(r[2].nchildren == 2 && r[2].children);
    if (r[2].nchildren == 2 && r[2].children) {
        CHECK_STR(r[2].children[0], "P1S1R1");
        CHECK_STR(r[2].children[1], "P1S1R2");
    }
    CHECK_STR(r[3].id, "");
    IdxResource one;
    CHECK(idx_resource_get(&err, db, IDX_STUDY, "P1S1", &one));
    CHECK(one.ntags == r[2].ntags);
    for (size_t k = 0; k < one.ntags && k < r[2].ntags; k++) {
        CHECK(one.tag_keys[k] == r[2].tag_keys[k]);
        CHECK_STR(one.tag_values[k], r[2].tag_values[k]);
    }
    idx_resource_cleanup(&one);
    for (int i = 0; i < 4; i++)
        idx_resource_cleanup(&r[i]);
    /* counted, not listed; metadata only when asked */
    const char *series[] = {"P1S1R1", "P1S1R2"};
    CHECK(idx_resources_get(&err, db, IDX_SERIES, series, 2, IDX_GET_NCHILDREN | IDX_GET_META, r));
    CHECK(r[0].nchildren == 2 && r[0].children == NULL && r[0].ntags == 0);
    CHECK(r[1].nchildren == 1 && r[1].children == NULL);
    CHECK_STR(idx_resource_metadata(&r[0], "RemoteAET"), "P1S1R1");
    for (int i = 0; i < 2; i++)
        idx_resource_cleanup(&r[i]);
    /* the same ID twice: two copies of their own (each released on its own) */
    const char *twice[] = {"P1S1", "P1S2", "P1S1"};
    CHECK(idx_resources_get(&err, db, IDX_STUDY, twice, 3, IDX_GET_TAGS | IDX_GET_META | IDX_GET_NCHILDREN, r));
    CHECK_STR(r[0].id, "P1S1");
    CHECK_STR(r[2].id, "P1S1");
    CHECK(r[0].ntags == 2 && r[2].ntags == 2 && r[0].tag_values != r[2].tag_values);
    CHECK(r[0].nchildren == 2 && r[2].nchildren == 2 && r[1].nchildren == 1);
    CHECK_STR(idx_resource_metadata(&r[2], "StudyMeta"), "P1S1");
    CHECK_STR(idx_resource_metadata(&r[1], "StudyMeta"), "P1S2");
    for (int i = 0; i < 3; i++)
        idx_resource_cleanup(&r[i]);
    CHECK(idx_resources_get(&err, db, IDX_STUDY, NULL, 0, IDX_GET_TAGS, NULL)); /* nothing asked */
    CHECK(!idx_resources_get(&err, db, 7, ids, 1, IDX_GET_TAGS, r) && err.code == STO_ERR_ARG);
    idx_close(db);
out:
    rm_tree(dir);
}

static void test_storage_list(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f;
    IdxStoreResult res;
    for (int p = 1; p <= 5; p++) {
        fake_init(&f, p, 1, 1, 1, 1);
        CHECK(fake_store(db, &f, &res));
    }
    char **ids = NULL;
    size_t n = 0;
    CHECK(idx_list(&err, db, IDX_PATIENT, 0, 0, &ids, &n));
    CHECK(n == 5);
    if (n == 5) {
        CHECK_STR(ids[0], "P1");
        CHECK_STR(ids[4], "P5");
    }
    idx_strings_free(ids, n);
    CHECK(idx_list(&err, db, IDX_PATIENT, 2, 2, &ids, &n));
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(ids[0], "P3");
        CHECK_STR(ids[1], "P4");
    }
    idx_strings_free(ids, n);
    CHECK(idx_list(&err, db, IDX_PATIENT, 4, 10, &ids, &n));
    CHECK(n == 1 && strcmp(ids[0], "P5") == 0);
    idx_strings_free(ids, n);
    CHECK(idx_list(&err, db, IDX_INSTANCE, 10, 0, &ids, &n));
    CHECK(n == 0);
    idx_strings_free(ids, n);
    CHECK(idx_list(&err, db, IDX_SERIES, 0, 3, &ids, &n));
    CHECK(n == 3 && strcmp(ids[2], "P3S1R1") == 0);
    idx_strings_free(ids, n);
    CHECK(!idx_list(&err, db, 7, 0, 0, &ids, &n));
    CHECK(err.code == STO_ERR_ARG);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_delete(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f[5];
    IdxStoreResult res;
    fake_init(&f[0], 1, 1, 1, 1, 10);
    fake_init(&f[1], 1, 1, 1, 2, 20);
    fake_init(&f[2], 1, 2, 1, 1, 30);
    fake_init(&f[3], 1, 2, 2, 1, 40);
    fake_init(&f[4], 2, 1, 1, 1, 50); /* another patient */
    for (int i = 0; i < 5; i++)
        CHECK(fake_store(db, &f[i], &res));
    int64_t before;
    {
        IdxChange *ch = NULL;
        size_t n;
        CHECK(idx_changes_last(&err, db, &ch, &n, &before));
        free(ch);
    }

    /* 1. one instance of a two-instance series: only it goes; the series remains */
    IdxDeleteResult del;
    CHECK(idx_delete(&err, db, IDX_INSTANCE, "P1S1R1I1", &del));
    CHECK(del.nfiles == 1 && strcmp(del.files[0].uuid, f[0].uuid) == 0);
    CHECK(del.remaining_level == IDX_SERIES);
    CHECK_STR(del.remaining_id, "P1S1R1");
    bool referenced = true;
    CHECK(pending_count(db, f[0].uuid, &referenced) == 1 && !referenced);
    free(del.files);

    /* 2. the last instance of study P1S1: instance, series and study go; patient remains */
    CHECK(idx_delete(&err, db, IDX_INSTANCE, "P1S1R1I2", &del));
    CHECK(del.nfiles == 1);
    CHECK(del.remaining_level == IDX_PATIENT);
    CHECK_STR(del.remaining_id, "P1");
    free(del.files);
    IdxResource r;
    CHECK(!idx_resource_get(&err, db, -1, "P1S1R1", &r));
    CHECK(!idx_resource_get(&err, db, -1, "P1S1", &r));
    CHECK(idx_resource_get(&err, db, IDX_PATIENT, "P1", &r));
    CHECK(r.nchildren == 1 && strcmp(r.children[0], "P1S2") == 0);
    idx_resource_cleanup(&r);

    IdxChange *ch = NULL;
    size_t n = 0;
    bool done;
    int64_t last;
    CHECK(idx_changes(&err, db, before, 0, &ch, &n, &done, &last));
    CHECK(n == 0); /* as Orthanc, a delete logs no change */
    free(ch);
    /* ... and the changes of every resource it removed (I1; I2, R1, S1) are gone, the
     * patient's remain */
    CHECK(idx_changes(&err, db, 0, 1000, &ch, &n, &done, &last));
    bool removed_seen = false, patient_seen = false;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(ch[i].id, "P1S1", 4)) removed_seen = true;
        if (!strcmp(ch[i].id, "P1")) patient_seen = true;
    }
    CHECK(!removed_seen && patient_seen);
    free(ch);

    /* 3. a whole patient: cascades through the study and its two series */
    CHECK(idx_delete(&err, db, IDX_PATIENT, "P1", &del));
    CHECK(del.nfiles == 2);
    if (del.nfiles == 2) {
        CHECK_STR(del.files[0].uuid, f[2].uuid);
        CHECK_STR(del.files[1].uuid, f[3].uuid);
    }
    CHECK(del.remaining_level == -1);
    free(del.files);
    CHECK(!idx_resource_get(&err, db, -1, "P1S2R2I1", &r));
    CHECK(err.code == STO_ERR_NOT_FOUND);
    char **ids = NULL;
    CHECK(idx_list(&err, db, IDX_INSTANCE, 0, 0, &ids, &n));
    CHECK(n == 1 && strcmp(ids[0], "P2S1R1I1") == 0);
    idx_strings_free(ids, n);

    IdxTotals t;
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[0] == 1 && t.count[1] == 1 && t.count[2] == 1 && t.count[3] == 1);
    CHECK(t.disk_size == 50);

    /* 4. the series of the last patient: everything goes, totals back to 0 */
    CHECK(idx_delete(&err, db, IDX_SERIES, "P2S1R1", &del));
    CHECK(del.nfiles == 1 && del.remaining_level == -1);
    free(del.files);
    CHECK(idx_totals(&err, db, &t));
    CHECK(t.count[0] == 0 && t.count[1] == 0 && t.count[2] == 0 && t.count[3] == 0);
    CHECK(t.disk_size == 0 && t.uncompressed_size == 0);
    for (int l = 0; l < IDX_LEVELS; l++) {
        CHECK(idx_list(&err, db, l, 0, 0, &ids, &n));
        CHECK(n == 0);
        idx_strings_free(ids, n);
    }
    /* every deleted file is pending and unreferenced; clearing empties the list */
    IdxPending *p = NULL;
    CHECK(pending_rows(db, &p, &n));
    CHECK(n == 5);
    const char *uuids[5];
    for (size_t i = 0; i < n && i < 5; i++) {
        CHECK(!p[i].referenced);
        uuids[i] = p[i].uuid;
    }
    CHECK(idx_pending_clear(&err, db, uuids, n < 5 ? n : 5));
    free(p);
    CHECK(pending_count(db, NULL, NULL) == 0);

    err.code = 0;
    CHECK(!idx_delete(&err, db, IDX_PATIENT, "P2", &del));
    CHECK(err.code == STO_ERR_NOT_FOUND && del.files == NULL);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_pending(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    char a[STO_UUID_LEN], b[STO_UUID_LEN];
    sto_uuid_new(a);
    sto_uuid_new(b);
    CHECK(idx_pending_add(&err, db, a));
    CHECK(idx_pending_add(&err, db, a)); /* twice is fine */
    CHECK(idx_pending_add(&err, db, b));
    CHECK(pending_count(db, NULL, NULL) == 2);
    CHECK(!idx_pending_add(&err, db, "x"));
    CHECK(err.code == STO_ERR_ARG);

    /* a stored instance whose uuid is (again) pending shows as referenced */
    Fake f;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 5);
    CHECK(fake_store(db, &f, &res));
    CHECK(idx_pending_add(&err, db, f.uuid));
    bool referenced = false;
    CHECK(pending_count(db, f.uuid, &referenced) == 1 && referenced);
    referenced = true;
    CHECK(pending_count(db, a, &referenced) == 1 && !referenced);

    const char *both[2] = {a, b};
    CHECK(idx_pending_clear(&err, db, both, 2));
    CHECK(idx_pending_clear(&err, db, both, 0));
    CHECK(pending_count(db, NULL, NULL) == 1);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_changes(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    IdxChange *ch = NULL;
    size_t n = 9;
    bool done = false;
    int64_t last = -1;

    CHECK(idx_changes(&err, db, 0, 0, &ch, &n, &done, &last));
    CHECK(n == 0 && done && last == 0);
    free(ch);
    CHECK(idx_changes_last(&err, db, &ch, &n, &last));
    CHECK(n == 0 && ch == NULL && last == 0);

    char id[IDX_ID_LEN];
    for (int i = 1; i <= 250; i++) {
        snprintf(id, sizeof id, "R%d", i);
        CHECK(idx_change_add(&err, db, "StableSeries", IDX_SERIES, id));
    }
    CHECK(idx_changes(&err, db, 0, 0, &ch, &n, &done, &last));
    CHECK(n == 100 && !done && last == 100); /* default limit */
    CHECK(n && ch[0].seq == 1 && strcmp(ch[0].id, "R1") == 0);
    free(ch);
    CHECK(idx_changes(&err, db, 240, 5, &ch, &n, &done, &last));
    CHECK(n == 5 && !done && last == 245 && ch[0].seq == 241);
    free(ch);
    CHECK(idx_changes(&err, db, 245, 5, &ch, &n, &done, &last));
    CHECK(n == 5 && done && last == 250); /* exactly the rest: done */
    free(ch);
    CHECK(idx_changes(&err, db, 250, 5, &ch, &n, &done, &last));
    CHECK(n == 0 && done && last == 250); /* empty page: Orthanc reports the last seq */
    free(ch);
    CHECK(idx_changes_last(&err, db, &ch, &n, &last));
    CHECK(n == 1 && ch[0].seq == 250 && last == 250);
    CHECK_STR(ch[0].type, "StableSeries");
    free(ch);

    CHECK(idx_changes_clear(&err, db));
    CHECK(idx_changes(&err, db, 0, 0, &ch, &n, &done, &last));
    CHECK(n == 0 && done && last == 250);
    free(ch);
    CHECK(idx_changes_last(&err, db, &ch, &n, &last));
    CHECK(n == 0 && last == 250);
    /* after a clear, and after a reopen, seqs continue */
    idx_close(db);
    db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_change_add(&err, db, "NewPatient", IDX_PATIENT, "P9"));
    CHECK(idx_changes(&err, db, 0, 10, &ch, &n, &done, &last));
    CHECK(n == 1 && ch[0].seq == 251 && done && last == 251);
    free(ch);

    CHECK(!idx_change_add(&err, db, "AVeryLongChangeTypeThatDoesNotFitAtAll", 0, "P9"));
    CHECK(err.code == STO_ERR_ARG);
out:
    idx_close(db);
    rm_tree(dir);
}

typedef struct JobSeen {
    int n;
    char ids[4][16];
    char json[4][32];
} JobSeen;

static void job_cb(void *ctx, const char *id, const char *json)
{
    JobSeen *s = ctx;
    if (s->n < 4) {
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
        snprintf(s->json[s->n], sizeof s->json[0], "%s", json);
    }
    s->n++;
}

static void test_storage_jobs(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_job_save(&err, db, "job-b", "{\"n\":1}"));
    CHECK(idx_job_save(&err, db, "job-a", "{\"n\":2}"));
    CHECK(idx_job_save(&err, db, "job-c", "{\"n\":3}"));
    CHECK(idx_job_save(&err, db, "job-b", "{\"n\":4}")); /* update keeps its place */
    CHECK(idx_job_delete(&err, db, "job-a"));
    CHECK(idx_job_delete(&err, db, "job-zzz")); /* absent: fine */
    idx_close(db);
    db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    JobSeen seen = {0};
    CHECK(idx_jobs_load(&err, db, job_cb, &seen));
    CHECK(seen.n == 2);
    CHECK_STR(seen.ids[0], "job-b");
    CHECK_STR(seen.json[0], "{\"n\":4}");
    CHECK_STR(seen.ids[1], "job-c");
    CHECK(idx_job_save(&err, db, "job-d", "{}"));
    memset(&seen, 0, sizeof seen);
    if (on_pg()) {
        /* several processes: loading claims the jobs of processes that are gone, and the
         * ones this handle saved are its own (running here): nothing to load until reopened */
        CHECK(idx_jobs_load(&err, db, job_cb, &seen) && seen.n == 0);
        idx_close(db);
        db = open_db(&err, dir);
        CHECK(db != NULL);
        if (!db)
            goto out;
    }
    CHECK(idx_jobs_load(&err, db, job_cb, &seen));
    CHECK(seen.n == 3 && strcmp(seen.ids[2], "job-d") == 0);
out:
    idx_close(db);
    rm_tree(dir);
}

/* ---- concurrency and speed ------------------------------------------------------------------ */

#define WRITERS 4
#define PER_WRITER 500

typedef struct Shared {
    IdxDb *db;
    int writer;
    _Atomic int writers_done;
    _Atomic int failures;
    _Atomic long reads;
} Shared;

typedef struct WriterArg {
    Shared *sh;
    int index;
} WriterArg;

static void *writer_main(void *p)
{
    WriterArg *a = p;
    Fake f;
    IdxStoreResult res;
    for (int i = 0; i < PER_WRITER; i++) {
        /* per writer: 5 patients x 2 studies x 5 series x 10 instances */
        fake_init(&f, a->index * 100 + i / 100, (i / 50) % 2, (i / 10) % 5, i % 10, 100);
        if (!fake_store(a->sh->db, &f, &res) || res.already_stored || !res.created[3])
            a->sh->failures++;
    }
    a->sh->writers_done++;
    return NULL;
}

static void *reader_main(void *p)
{
    Shared *sh = p;
    StoError err = {0};
    while (sh->writers_done < WRITERS) {
        char **ids = NULL;
        size_t n = 0;
        IdxTotals t;
        if (!idx_list(&err, sh->db, IDX_SERIES, 0, 0, &ids, &n) || !idx_totals(&err, sh->db, &t))
            sh->failures++;
        for (size_t i = 0; i < n; i += 7) {
            IdxResource r;
            if (!idx_resource_get(&err, sh->db, IDX_SERIES, ids[i], &r) || r.nchildren == 0 ||
                r.ntags != 2)
                sh->failures++;
            idx_resource_cleanup(&r);
        }
        idx_strings_free(ids, n);
        if (t.count[IDX_INSTANCE] > (uint64_t)WRITERS * PER_WRITER)
            sh->failures++;
        sh->reads++;
    }
    return NULL;
}

static void test_storage_concurrency(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    Shared sh = {0};
    sh.db = open_db(&err, dir);
    CHECK(sh.db != NULL);
    if (!sh.db)
        goto out;
    pthread_t w[WRITERS], r[2];
    WriterArg args[WRITERS];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&r[i], NULL, reader_main, &sh) == 0);
    for (int i = 0; i < WRITERS; i++) {
        args[i].sh = &sh;
        args[i].index = i + 1;
        CHECK(pthread_create(&w[i], NULL, writer_main, &args[i]) == 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    CHECK(sh.failures == 0);
    IdxTotals t;
    CHECK(idx_totals(&err, sh.db, &t));
    CHECK(t.count[IDX_PATIENT] == WRITERS * 5);
    CHECK(t.count[IDX_STUDY] == WRITERS * 10);
    CHECK(t.count[IDX_SERIES] == WRITERS * 50);
    CHECK(t.count[IDX_INSTANCE] == WRITERS * PER_WRITER);
    CHECK(t.disk_size == WRITERS * PER_WRITER * 100);
    CHECK(pending_count(sh.db, NULL, NULL) == 0);
    IdxChange *ch = NULL;
    size_t n;
    int64_t last;
    CHECK(idx_changes_last(&err, sh.db, &ch, &n, &last));
    CHECK(last == WRITERS * (PER_WRITER + 50 + 10 + 5));
    free(ch);
    fprintf(stderr, "     (concurrency: %d instances by %d writers, %ld reader passes)\n",
            WRITERS * PER_WRITER, WRITERS, (long)sh.reads);
out:
    idx_close(sh.db);
    rm_tree(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_storage_store_rate(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    const int N = on_pg() ? 300 : 5000; /* each PostgreSQL store is ~10 round trips */
    Fake f;
    IdxStoreResult res;
    double t0 = now_s();
    int ok = 0;
    for (int i = 0; i < N; i++) {
        fake_init(&f, i / 500, (i / 100) % 5, (i / 20) % 5, i % 20, 1000);
        ok += idx_store_instance(&err, db, &f.in, &res);
    }
    double t1 = now_s();
    for (int i = 0; i < N; i++) {
        fake_init(&f, 100 + i / 500, (i / 100) % 5, (i / 20) % 5, i % 20, 1000);
        ok += fake_store(db, &f, &res);
    }
    double t2 = now_s();
    CHECK(ok == 2 * N);
    fprintf(stderr, "     (idx_store_instance: %.0f/s alone, %.0f/s with idx_pending_add)\n",
            N / (t1 - t0), N / (t2 - t1));
out:
    idx_close(db);
    rm_tree(dir);
}

/* ---- the backend interface: open options, schema revisions, statement cache ----------- */

/* PRAGMA user_version of dir/index.sqlite, read with a connection of our own; -1 on error. */
static int file_revision(const char *dir)
{
    char path[4096];
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    int v = -1;
    snprintf(path, sizeof path, "%s/index.sqlite", dir);
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

/* Runs sql on dir/index.sqlite with a connection of our own (no index open). */
static bool file_exec(const char *dir, const char *sql)
{
    char path[4096];
    sqlite3 *h = NULL;
    snprintf(path, sizeof path, "%s/index.sqlite", dir);
    bool ok = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
              sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        fprintf(stderr, "file_exec: %s\n", h ? sqlite3_errmsg(h) : "open");
    sqlite3_close(h);
    return ok;
}

static void test_storage_open_options(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxInfo info;

    CHECK(idx_open_with(&err, NULL) == NULL && err.code == STO_ERR_ARG);
    IdxOptions bad = {.backend = (IdxBackendKind)99, .dir = dir};
    memset(&err, 0, sizeof err);
    CHECK(idx_open_with(&err, &bad) == NULL && err.code == STO_ERR_ARG);
    IdxOptions neg = {.backend = IDX_BACKEND_SQLITE, .dir = dir, .readers = -1};
    memset(&err, 0, sizeof err);
    CHECK(idx_open_with(&err, &neg) == NULL && err.code == STO_ERR_ARG);
    IdxOptions nodir = {.backend = IDX_BACKEND_SQLITE};
    memset(&err, 0, sizeof err);
    CHECK(idx_open_with(&err, &nodir) == NULL && err.code == STO_ERR_ARG);
    CHECK(!idx_info(&err, NULL, &info) && err.code == STO_ERR_ARG);

    /* One reader: every read waits for it, and reads still work while a writer writes. */
    IdxOptions one = {.backend = IDX_BACKEND_SQLITE, .dir = dir, .readers = 1};
    IdxDb *db = idx_open_with(&err, &one);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_info(&err, db, &info));
    CHECK_STR(info.backend, "sqlite");
    Fake f;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 10);
    CHECK(fake_store(db, &f, &res));
    IdxResource r;
    CHECK(idx_resource_get(&err, db, IDX_INSTANCE, f.ids[3], &r));
    idx_resource_cleanup(&r);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_schema_revision(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxInfo info;
    IdxDb *db = idx_open(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_info(&err, db, &info));
    CHECK(info.schema_revision >= 8);
    int latest = info.schema_revision;
    Fake f;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 10);
    CHECK(fake_store(db, &f, &res));
    idx_close(db);
    db = NULL;
    /* recorded in the file */
    CHECK(file_revision(dir) == latest);

    /* An index of the first revision (6: no metadata_rev, no protected table) is upgraded on
     * open, its data intact, and the features of the later revisions work on it. */
    CHECK(file_exec(dir, "DROP TABLE metadata_rev; DROP TABLE protected;"
                         " PRAGMA user_version=6;"));
    CHECK(file_revision(dir) == 6);
    db = idx_open(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_info(&err, db, &info) && info.schema_revision == latest);
    CHECK(file_revision(dir) == latest);
    IdxResource r;
    CHECK(idx_resource_get(&err, db, IDX_PATIENT, f.ids[0], &r));
    CHECK(r.nchildren == 1);
    idx_resource_cleanup(&r);
    int64_t rev = -1;
    CHECK(idx_metadata_put(&err, db, IDX_SERIES, f.ids[2], "1024", "x", -1, &rev) && rev == 0);
    CHECK(idx_metadata_put(&err, db, IDX_SERIES, f.ids[2], "1024", "y", 0, &rev) && rev == 1);
    bool prot = false;
    CHECK(idx_patient_set_protected(&err, db, f.ids[0], true));
    CHECK(idx_patient_is_protected(&err, db, f.ids[0], &prot) && prot);
    idx_close(db);
    db = NULL;

    /* Reopening an up-to-date index changes nothing. */
    db = idx_open(&err, dir);
    CHECK(db != NULL);
    prot = false;
    CHECK(db && idx_patient_is_protected(&err, db, f.ids[0], &prot) && prot);
    idx_close(db);
    db = NULL;

    /* A newer revision than ours is refused, and the file is left as it was. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", latest + 1);
    CHECK(file_exec(dir, sql));
    memset(&err, 0, sizeof err);
    db = idx_open(&err, dir);
    CHECK(db == NULL);
    CHECK(err.code == STO_ERR_DB && strstr(err.message, "newer") != NULL);
    CHECK(file_revision(dir) == latest + 1);
    /* and so is a revision older than the first known one */
    CHECK(file_exec(dir, "PRAGMA user_version=3"));
    memset(&err, 0, sizeof err);
    CHECK((db = idx_open(&err, dir)) == NULL && err.code == STO_ERR_DB);
out:
    idx_close(db);
    rm_tree(dir);
}

/* One round of the calls the server makes on every upload and every REST read. */
static bool cache_round(IdxDb *db, int i)
{
    StoError err = {0};
    Fake f;
    IdxStoreResult res;
    IdxResource r;
    IdxTotals t;
    IdxChange *ch = NULL;
    size_t n = 0;
    bool done;
    int64_t last, rev;
    char **ids = NULL;
    char *value = NULL;
    fake_init(&f, i % 3, i % 2, i % 4, i, 100);
    bool ok = fake_store(db, &f, &res) &&
              idx_resource_get(&err, db, IDX_INSTANCE, f.ids[3], &r);
    if (ok)
        idx_resource_cleanup(&r);
    ok = ok && idx_totals(&err, db, &t) &&
         idx_changes(&err, db, 0, 10, &ch, &n, &done, &last);
    free(ch);
    ok = ok && idx_list(&err, db, IDX_SERIES, 0, 0, &ids, &n);
    idx_strings_free(ids, n);
    ok = ok && idx_metadata_put(&err, db, IDX_INSTANCE, f.ids[3], "1025", "v", -1, &rev) &&
         idx_metadata_get(&err, db, IDX_INSTANCE, f.ids[3], "1025", &value, &rev);
    free(value);
    if (!ok)
        fprintf(stderr, "cache_round %d: %s\n", i, err.message);
    return ok;
}

static void test_storage_statement_cache(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxInfo before, after;
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(cache_round(db, 0));
    CHECK(idx_info(&err, db, &before));
    CHECK(before.statements_prepared > 0);
    int ok = 0;
    for (int i = 1; i <= 50; i++)
        ok += cache_round(db, i);
    CHECK(ok == 50);
    CHECK(idx_info(&err, db, &after));
    /* 50 more rounds of the same calls prepared nothing new: they reused the cache */
    CHECK(after.statements_prepared == before.statements_prepared);
    /* find's text depends on its constraints: exactly one prepare per call on SQLite; the
     * PostgreSQL backend sends it unprepared (PQexecParams) */
    IdxFindConstraint c = {.level = IDX_PATIENT, .tag = 0x00100020, .pattern = "P*"};
    char **ids = NULL;
    size_t n = 0;
    CHECK(idx_find(&err, db, IDX_PATIENT, &c, 1, 0, 0, &ids, &n) && n == 3);
    idx_strings_free(ids, n);
    CHECK(idx_info(&err, db, &after));
    CHECK(after.statements_prepared == before.statements_prepared + (on_pg() ? 0 : 1));
out:
    idx_close(db);
    rm_tree(dir);
}

/* ---- find ------------------------------------------------------------------------------- */

/* Stores one instance whose patient tags are (0010,0010) name and (0010,0020) pid, study
 * date (0008,0020) date, series modality (0008,0060) mod. */
static bool store_tagged(IdxDb *db, int k, const char *name, const char *date, const char *mod)
{
    Fake f;
    IdxStoreResult res;
    fake_init(&f, k, 1, 1, 1, 10);
    f.tags[0][1].value = name;
    f.tags[1][1].value = date;
    f.tags[2][1].value = mod;
    return fake_store(db, &f, &res);
}

/* Runs idx_find and compares the result with the expected IDs (space-separated). */
static bool find_is(IdxDb *db, int level, const IdxFindConstraint *c, size_t nc, uint64_t since,
                    uint64_t limit, const char *expect)
{
    StoError err = {0};
    char **ids = NULL;
    size_t n = 0;
    char got[1024] = "";
    if (!idx_find(&err, db, level, c, nc, since, limit, &ids, &n)) {
        fprintf(stderr, "find: %s\n", err.message);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        strncat(got, i ? " " : "", sizeof got - strlen(got) - 1);
        strncat(got, ids[i], sizeof got - strlen(got) - 1);
    }
    idx_strings_free(ids, n);
    if (strcmp(got, expect) != 0) {
        fprintf(stderr, "find: got \"%s\", expected \"%s\"\n", got, expect);
        return false;
    }
    return true;
}

static void test_storage_find(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(store_tagged(db, 1, "DOE^JOHN", "20200115", "CT"));
    CHECK(store_tagged(db, 2, "Doe^Jane", "20201231", "MR"));
    CHECK(store_tagged(db, 3, "SMITH[1]", "20210301", "CT"));
    CHECK(store_tagged(db, 4, "ROE^A?", "20201231120000", "US"));

    IdxFindConstraint c = {.level = IDX_PATIENT, .tag = 0x00100010};
    c.pattern = "DOE^JOHN"; /* exact, case-sensitive */
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P1"));
    c.pattern = "doe^john";
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, ""));
    c.case_insensitive = true; /* PN: ASCII case folding, exact and wildcard */
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P1"));
    c.pattern = "doe*";
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P1 P2"));
    c.case_insensitive = false;
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, ""));
    c.pattern = "?OE^*";
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P1 P4"));
    c.pattern = "SMITH[1]*"; /* '[' is a literal, not a GLOB class */
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P3"));
    c.pattern = "SMITH[1]";
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P3"));
    c.pattern = "ROE^A?"; /* '?' in the pattern is a wildcard: matches "ROE^A?" itself */
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P4"));
    c.pattern = "NOBODY\\Doe^Jane\\SMITH*"; /* alternatives */
    CHECK(find_is(db, IDX_PATIENT, &c, 1, 0, 0, "P2 P3"));

    /* ranges on the study date, asked at the study level */
    IdxFindConstraint d = {.level = IDX_STUDY, .tag = 0x00080020, .range = true};
    d.pattern = "20200101-20201231"; /* the high bound includes that whole day (DT) */
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P1S1 P2S1 P4S1"));
    d.pattern = "20201231-";
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P2S1 P3S1 P4S1"));
    d.pattern = "-20200115";
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P1S1"));
    d.pattern = "-20200101\\20210301-";
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P3S1"));
    d.pattern = "20201231"; /* no dash: an exact value */
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P2S1"));

    /* a constraint on an ancestor, combined with one on the level searched; since/limit */
    IdxFindConstraint both[2] = {
        {.level = IDX_SERIES, .tag = 0x00080060, .pattern = "CT"},
        {.level = IDX_PATIENT, .tag = 0x00100010, .pattern = "*", .case_insensitive = true},
    };
    CHECK(find_is(db, IDX_SERIES, both, 2, 0, 0, "P1S1R1 P3S1R1"));
    CHECK(find_is(db, IDX_SERIES, both, 2, 1, 0, "P3S1R1"));
    CHECK(find_is(db, IDX_SERIES, both, 2, 0, 1, "P1S1R1"));
    CHECK(find_is(db, IDX_INSTANCE, both, 2, 0, 0, "P1S1R1I1 P3S1R1I1"));
    CHECK(find_is(db, IDX_SERIES, NULL, 0, 0, 0, "P1S1R1 P2S1R1 P3S1R1 P4S1R1"));
    /* an absent tag never matches */
    IdxFindConstraint absent = {.level = IDX_SERIES, .tag = 0x00081030, .pattern = "*"};
    CHECK(find_is(db, IDX_SERIES, &absent, 1, 0, 0, ""));

    /* A range seeks the lower(value) index only when its bounds hold no letter, where a byte
     * range implies the folded one. "-2020_" must not seek: "2020X" <= "2020_" byte-wise but
     * "2020x" is not, so a seek would lose P5. */
    CHECK(store_tagged(db, 5, "MIXED", "2020X", "OT"));
    d.pattern = "-2020_";
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P1S1 P2S1 P4S1 P5S1"));
    d.pattern = "2020-2021"; /* seeks; the capital in "2020X" does not lose it */
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P1S1 P2S1 P3S1 P4S1 P5S1"));
    d.pattern = "2020Y-"; /* letters: compared byte-wise ("20210301" > "2020Y") */
    CHECK(find_is(db, IDX_STUDY, &d, 1, 0, 0, "P3S1"));
    CHECK(find_is(db, IDX_INSTANCE, &d, 1, 0, 0, "P3S1R1I1"));
    d.pattern = "20201231-20201231"; /* a range on an ancestor, searched at the instance level */
    CHECK(find_is(db, IDX_INSTANCE, &d, 1, 0, 0, "P2S1R1I1 P4S1R1I1"));

    /* bad constraints: deeper than the level searched, NULL pattern */
    char **ids = NULL;
    size_t n = 0;
    IdxFindConstraint deep = {.level = IDX_INSTANCE, .tag = 0x00080018, .pattern = "x"};
    CHECK(!idx_find(&err, db, IDX_SERIES, &deep, 1, 0, 0, &ids, &n) && err.code == STO_ERR_ARG);
    IdxFindConstraint nopat = {.level = IDX_PATIENT, .tag = 0x00100010};
    CHECK(!idx_find(&err, db, IDX_PATIENT, &nopat, 1, 0, 0, &ids, &n) && ids == NULL);
out:
    idx_close(db);
    rm_tree(dir);
}

/* ---- metadata revisions and protection ------------------------------------------------ */

static void test_storage_metadata_revisions(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 10);
    CHECK(fake_store(db, &f, &res));
    const char *sid = f.ids[1];
    char *v = NULL;
    int64_t rev = -1;

    /* ingest metadata reads back with revision 0 */
    CHECK(idx_metadata_get(&err, db, IDX_STUDY, sid, "StudyMeta", &v, &rev));
    CHECK_STR(v, sid);
    CHECK(rev == 0);
    free(v);
    CHECK(!idx_metadata_get(&err, db, IDX_STUDY, sid, "nope", &v, &rev));
    CHECK(err.code == STO_ERR_NOT_FOUND && v == NULL);
    CHECK(!idx_metadata_get(&err, db, IDX_SERIES, sid, "StudyMeta", &v, &rev));
    CHECK(err.code == STO_ERR_NOT_FOUND);

    CHECK(idx_metadata_put(&err, db, IDX_STUDY, sid, "1024", "a", -1, &rev) && rev == 0);
    CHECK(idx_metadata_put(&err, db, IDX_STUDY, sid, "1024", "b", 0, &rev) && rev == 1);
    CHECK(!idx_metadata_put(&err, db, IDX_STUDY, sid, "1024", "c", 0, &rev));
    CHECK(err.code == STO_ERR_CONFLICT);
    CHECK(!idx_metadata_put(&err, db, IDX_STUDY, sid, "absent", "c", 0, &rev));
    CHECK(err.code == STO_ERR_CONFLICT);
    CHECK(idx_metadata_get(&err, db, -1, sid, "1024", &v, &rev) && rev == 1);
    CHECK_STR(v, "b");
    free(v);
    CHECK(!idx_metadata_remove(&err, db, IDX_STUDY, sid, "1024", 0));
    CHECK(err.code == STO_ERR_CONFLICT);
    CHECK(idx_metadata_remove(&err, db, IDX_STUDY, sid, "1024", 1));
    CHECK(!idx_metadata_remove(&err, db, IDX_STUDY, sid, "1024", -1));
    CHECK(err.code == STO_ERR_NOT_FOUND);
    /* a put after a remove starts a new item: revision 0 */
    CHECK(idx_metadata_put(&err, db, IDX_STUDY, sid, "1024", "d", -1, &rev) && rev == 0);

    /* set/delete: no revision check */
    CHECK(idx_metadata_set(&err, db, IDX_STUDY, sid, "x", "1"));
    CHECK(idx_metadata_delete(&err, db, IDX_STUDY, sid, "x"));
    CHECK(!idx_metadata_delete(&err, db, IDX_STUDY, sid, "x") && err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_metadata_set(&err, db, IDX_STUDY, "nope", "x", "1"));
    CHECK(err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_metadata_set(&err, db, 7, sid, "x", "1") && err.code == STO_ERR_ARG);

    /* the cached MD5 */
    CHECK(idx_attachment_set_md5(&err, db, f.uuid, "ffffffffffffffffffffffffffffffff"));
    IdxResource r;
    CHECK(idx_resource_get(&err, db, IDX_INSTANCE, f.ids[3], &r));
    CHECK_STR(r.md5, "ffffffffffffffffffffffffffffffff");
    idx_resource_cleanup(&r);
    CHECK(!idx_attachment_set_md5(&err, db, f.uuid, "short") && err.code == STO_ERR_ARG);
out:
    idx_close(db);
    rm_tree(dir);
}

static void test_storage_protection(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f;
    IdxStoreResult res;
    for (int p = 1; p <= 3; p++) {
        fake_init(&f, p, 1, 1, 1, 10);
        CHECK(fake_store(db, &f, &res));
    }
    char oldest[IDX_ID_LEN];
    bool found = false, prot = true;
    CHECK(idx_oldest_patient(&err, db, NULL, oldest, &found) && found);
    CHECK_STR(oldest, "P1");
    CHECK(idx_oldest_patient(&err, db, "P1", oldest, &found) && found);
    CHECK_STR(oldest, "P2");
    CHECK(idx_patient_is_protected(&err, db, "P1", &prot) && !prot);
    CHECK(idx_patient_set_protected(&err, db, "P1", true));
    CHECK(idx_patient_set_protected(&err, db, "P1", true)); /* twice is fine */
    CHECK(idx_patient_is_protected(&err, db, "P1", &prot) && prot);
    CHECK(idx_oldest_patient(&err, db, NULL, oldest, &found) && found);
    CHECK_STR(oldest, "P2");
    CHECK(idx_patient_set_protected(&err, db, "P2", true));
    CHECK(idx_patient_set_protected(&err, db, "P3", true));
    CHECK(idx_oldest_patient(&err, db, NULL, oldest, &found) && !found && oldest[0] == '\0');
    CHECK(idx_patient_set_protected(&err, db, "P2", false));
    CHECK(idx_oldest_patient(&err, db, NULL, oldest, &found) && found);
    CHECK_STR(oldest, "P2");
    CHECK(!idx_patient_set_protected(&err, db, "P1S1", true) && err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_patient_is_protected(&err, db, "nope", &prot) && err.code == STO_ERR_NOT_FOUND);
    /* protection is dropped with the patient */
    IdxDeleteResult del;
    CHECK(idx_delete(&err, db, IDX_PATIENT, "P1", &del));
    free(del.files);
    fake_init(&f, 1, 1, 1, 1, 10);
    CHECK(fake_store(db, &f, &res));
    CHECK(idx_patient_is_protected(&err, db, "P1", &prot) && !prot);
out:
    idx_close(db);
    rm_tree(dir);
}

/* ---- user-defined attachments, main tags replaced ------------------------------------- */

static void att_init(IdxAttachment *a, int type, uint64_t size)
{
    memset(a, 0, sizeof *a);
    a->content_type = type;
    sto_uuid_new(a->uuid);
    a->compressed_size = a->uncompressed_size = size;
    snprintf(a->compressed_md5, sizeof a->compressed_md5, "%032d", (int)size);
    snprintf(a->uncompressed_md5, sizeof a->uncompressed_md5, "%032d", (int)size);
}

static void test_storage_attachments(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    Fake f;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 10);
    CHECK(fake_store(db, &f, &res));
    IdxAttachment a, got;
    int64_t rev = -5;
    char old[STO_UUID_LEN];
    int *types = NULL;
    size_t n = 0;
    /* put: pending cleared in the same transaction, revision 0 */
    att_init(&a, 1025, 11);
    CHECK(idx_pending_add(&err, db, a.uuid));
    CHECK(idx_attachment_put(&err, db, IDX_STUDY, "P1S1", &a, -1, &rev, old));
    CHECK(rev == 0 && old[0] == '\0');
    CHECK(pending_count(db, a.uuid, NULL) == 0);
    CHECK(idx_attachment_get(&err, db, IDX_STUDY, "P1S1", 1025, &got));
    CHECK_STR(got.uuid, a.uuid);
    CHECK(got.uncompressed_size == 11 && got.revision == 0 && got.compression == IDX_COMPRESSION_NONE);
    CHECK(!idx_attachment_get(&err, db, IDX_STUDY, "P1S1", 1024, &got) && err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_attachment_get(&err, db, IDX_SERIES, "P1S1", 1025, &got) && err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_attachment_get(&err, db, IDX_STUDY, "P1S1", 1, &got) && err.code == STO_ERR_ARG);
    /* replace: the old file becomes pending, revision 1; a stale If-Match is CONFLICT */
    IdxAttachment b;
    att_init(&b, 1025, 22);
    b.compression = IDX_COMPRESSION_ZLIB;
    CHECK(idx_pending_add(&err, db, b.uuid));
    CHECK(!idx_attachment_put(&err, db, IDX_STUDY, "P1S1", &b, 7, &rev, old) && err.code == STO_ERR_CONFLICT);
    CHECK(old[0] == '\0' && pending_count(db, b.uuid, NULL) == 1);
    CHECK(idx_attachment_put(&err, db, IDX_STUDY, "P1S1", &b, 0, &rev, old));
    CHECK(rev == 1);
    CHECK_STR(old, a.uuid);
    bool referenced = true;
    CHECK(pending_count(db, a.uuid, &referenced) == 1 && !referenced);
    CHECK(pending_count(db, b.uuid, NULL) == 0);
    const char *u = a.uuid;
    CHECK(idx_pending_clear(&err, db, &u, 1));
    CHECK(idx_attachment_get(&err, db, IDX_STUDY, "P1S1", 1025, &got) && got.compression == IDX_COMPRESSION_ZLIB);
    /* list, ascending */
    IdxAttachment c;
    att_init(&c, 1024, 5);
    CHECK(idx_attachment_put(&err, db, IDX_STUDY, "P1S1", &c, -1, &rev, old));
    CHECK(idx_attachment_list(&err, db, IDX_STUDY, "P1S1", &types, &n));
    CHECK(n == 2 && types && types[0] == 1024 && types[1] == 1025);
    free(types);
    CHECK(idx_attachment_list(&err, db, IDX_INSTANCE, "P1S1R1I1", &types, &n) && n == 0);
    free(types);
    CHECK(!idx_attachment_list(&err, db, IDX_STUDY, "nope", &types, &n) && err.code == STO_ERR_NOT_FOUND);
    /* remove: CONFLICT on a stale revision, then the file becomes pending */
    CHECK(!idx_attachment_remove(&err, db, IDX_STUDY, "P1S1", 1024, 3, old) && err.code == STO_ERR_CONFLICT);
    CHECK(idx_attachment_remove(&err, db, IDX_STUDY, "P1S1", 1024, 0, old));
    CHECK_STR(old, c.uuid);
    CHECK(!idx_attachment_remove(&err, db, IDX_STUDY, "P1S1", 1024, -1, old) && err.code == STO_ERR_NOT_FOUND);
    u = c.uuid;
    CHECK(idx_pending_clear(&err, db, &u, 1));
    /* an attachment on the instance too: deleting the patient lists both files */
    IdxAttachment d;
    att_init(&d, 2000, 7);
    CHECK(idx_attachment_put(&err, db, IDX_INSTANCE, "P1S1R1I1", &d, -1, &rev, old));
    IdxDeleteResult del;
    CHECK(idx_delete(&err, db, IDX_PATIENT, "P1", &del));
    CHECK(del.nfiles == 3);
    int seen = 0;
    for (size_t i = 0; i < del.nfiles; i++) {
        if (!strcmp(del.files[i].uuid, b.uuid)) {
            seen += 1;
            CHECK_STR(del.files[i].id, "P1S1");
        }
        if (!strcmp(del.files[i].uuid, d.uuid)) {
            seen += 2;
            CHECK_STR(del.files[i].id, "P1S1R1I1");
        }
        if (!strcmp(del.files[i].uuid, f.uuid)) seen += 4;
        CHECK(pending_count(db, del.files[i].uuid, NULL) == 1);
    }
    CHECK(seen == 7);
    free(del.files);
    /* main tags replaced */
    fake_init(&f, 2, 1, 1, 1, 10);
    CHECK(fake_store(db, &f, &res));
    IdxTag t[1] = {{0x00081030, "New description"}};
    CHECK(idx_set_main_tags(&err, db, IDX_STUDY, "P2S1", t, 1));
    IdxResource r = {0};
    CHECK(idx_resource_get(&err, db, IDX_STUDY, "P2S1", &r));
    CHECK(r.ntags == 1 && r.tag_keys[0] == 0x00081030);
    CHECK(r.ntags == 1 && !strcmp(r.tag_values[0], "New description"));
    idx_resource_cleanup(&r);
    CHECK(!idx_set_main_tags(&err, db, IDX_SERIES, "P2S1", t, 1) && err.code == STO_ERR_NOT_FOUND);
out:
    idx_close(db);
    rm_tree(dir);
}

/* ---- several processes on one PostgreSQL database (handles a and b play two processes) ---- */

/* Collects b's invalidations for up to ms milliseconds; true when id arrived. */
static bool invalidated(IdxDb *db, const char *id, int ms, size_t *count)
{
    StoError err = {0};
    bool seen = false;
    *count = 0;
    for (int waited = 0; waited < ms && !seen; waited += 100) {
        char **ids = NULL;
        size_t n = 0;
        bool all = false;
        if (!idx_invalidations(&err, db, 100, &ids, &n, &all)) {
            fprintf(stderr, "invalidations: %s\n", err.message);
            return false;
        }
        for (size_t i = 0; i < n; i++)
            seen |= strcmp(ids[i], id) == 0;
        *count += n;
        idx_strings_free(ids, n);
    }
    return seen;
}

static void test_storage_pg_invalidations(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *a = open_db(&err, dir), *b = open_db(&err, dir);
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK(idx_shared(a) && idx_shared(b));
    char **ids = NULL;
    size_t n = 9, got = 0;
    bool all = true;
    CHECK(idx_invalidations(&err, b, 0, &ids, &n, &all) && n == 0 && !all && ids == NULL);

    Fake f, g;
    IdxStoreResult res;
    fake_init(&f, 1, 1, 1, 1, 10);
    fake_init(&g, 1, 1, 1, 2, 10);
    CHECK(fake_store(a, &f, &res) && fake_store(a, &g, &res));
    /* new instances replace nothing: nobody is told */
    CHECK(!invalidated(b, f.ids[3], 300, &got) && got == 0);
    /* stored again without overwrite: AlreadyStored, nothing changes */
    sto_uuid_new(f.uuid);
    CHECK(fake_store(a, &f, &res) && res.already_stored);
    CHECK(!invalidated(b, f.ids[3], 300, &got) && got == 0);
    /* overwritten by a: b hears of it (and so does a itself) */
    f.in.overwrite = true;
    sto_uuid_new(f.uuid);
    CHECK(fake_store(a, &f, &res) && !res.already_stored && res.nold_files == 1);
    free(res.old_files);
    CHECK(invalidated(b, f.ids[3], 3000, &got) && got == 1);
    CHECK(invalidated(a, f.ids[3], 3000, &got));
    /* a failed delete tells nothing; deleting the series tells both instances */
    IdxDeleteResult dr = {0};
    CHECK(!idx_delete(&err, a, IDX_SERIES, "no-such-series", &dr) && err.code == STO_ERR_NOT_FOUND);
    CHECK(!invalidated(b, f.ids[3], 300, &got) && got == 0);
    CHECK(idx_delete(&err, a, IDX_SERIES, f.ids[2], &dr) && dr.nfiles == 2);
    free(dr.files);
    CHECK(invalidated(b, g.ids[3], 3000, &got));
    /* both ids came in the same transaction: delivered together */
    CHECK(got == 2);
    /* a SQLite index has nothing to say, at once */
    char *sdir = make_tmpdir();
    IdxDb *s = idx_open(&err, sdir);
    CHECK(s && !idx_shared(s));
    CHECK(idx_invalidations(&err, s, 5000, &ids, &n, &all) && n == 0 && !all);
    idx_close(s);
    rm_tree(sdir);
out:
    idx_close(a);
    idx_close(b);
    rm_tree(dir);
}

static void test_storage_pg_stable_once(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *a = open_db(&err, dir), *b = open_db(&err, dir);
    CHECK(a && b);
    if (!a || !b)
        goto out;
    Fake f;
    IdxStoreResult res;
    bool logged = true;
    int wait_s = -1;
    /* a study last updated long ago: the first process logs StableStudy, the second not */
    fake_init(&f, 1, 1, 1, 1, 10);
    IdxMeta old = {"LastUpdate", "20200101T000000"};
    f.in.meta[IDX_STUDY] = &old;
    CHECK(fake_store(a, &f, &res));
    CHECK(idx_change_add_stable(&err, a, "StableStudy", IDX_STUDY, f.ids[1], 60, &logged, &wait_s));
    CHECK(logged && wait_s == 0);
    CHECK(idx_change_add_stable(&err, b, "StableStudy", IDX_STUDY, f.ids[1], 60, &logged, &wait_s));
    CHECK(!logged && wait_s == 0);
    CHECK(idx_change_add_stable(&err, a, "StableStudy", IDX_STUDY, f.ids[1], 60, &logged, &wait_s));
    CHECK(!logged && wait_s == 0);
    /* another type for the same resource is its own */
    CHECK(idx_change_add_stable(&err, b, "StablePatient", IDX_PATIENT, f.ids[0], 0, &logged, &wait_s));
    CHECK(logged);
    /* a study updated just now is not due: how long to wait */
    Fake g;
    fake_init(&g, 2, 1, 1, 1, 10);
    CHECK(fake_store(b, &g, &res));
    CHECK(idx_change_add_stable(&err, a, "StableStudy", IDX_STUDY, g.ids[1], 3600, &logged, &wait_s));
    CHECK(!logged && wait_s >= 3598 && wait_s <= 3600);
    /* updated again after its Stable*: stable once more (once) */
    CHECK(idx_change_add_stable(&err, a, "StableSeries", IDX_SERIES, g.ids[2], 1, &logged, &wait_s));
    if (!logged) { /* stored in the same second: due one second later */
        CHECK(wait_s == 1);
        sleep(2);
        CHECK(idx_change_add_stable(&err, a, "StableSeries", IDX_SERIES, g.ids[2], 1, &logged, &wait_s));
    }
    CHECK(logged);
    sleep(1); /* the next instance comes in a later second than the change */
    Fake h;
    fake_init(&h, 2, 1, 1, 2, 10);
    CHECK(fake_store(a, &h, &res));
    sleep(2);
    CHECK(idx_change_add_stable(&err, b, "StableSeries", IDX_SERIES, g.ids[2], 1, &logged, &wait_s));
    CHECK(logged);
    CHECK(idx_change_add_stable(&err, a, "StableSeries", IDX_SERIES, g.ids[2], 1, &logged, &wait_s));
    CHECK(!logged && wait_s == 0);
    IdxChange *ch = NULL;
    size_t n = 0;
    bool done;
    int64_t last;
    CHECK(idx_changes(&err, a, 0, 1000, &ch, &n, &done, &last));
    int series = 0, study = 0;
    for (size_t i = 0; i < n; i++) {
        series += strcmp(ch[i].type, "StableSeries") == 0;
        study += strcmp(ch[i].type, "StableStudy") == 0;
    }
    free(ch);
    CHECK(series == 2 && study == 1);
    /* gone, wrong level, bad arguments */
    CHECK(!idx_change_add_stable(&err, a, "StableStudy", IDX_STUDY, "nope", 1, &logged, &wait_s));
    CHECK(err.code == STO_ERR_NOT_FOUND && !logged);
    CHECK(!idx_change_add_stable(&err, a, "StableStudy", IDX_STUDY, g.ids[2], 1, &logged, &wait_s));
    CHECK(err.code == STO_ERR_NOT_FOUND);
    CHECK(!idx_change_add_stable(&err, a, "StableStudy", 7, g.ids[1], 1, &logged, &wait_s));
    CHECK(err.code == STO_ERR_ARG);
out:
    idx_close(a);
    idx_close(b);
    rm_tree(dir);
}

/* How many times uuid is among the orphans idx_pending_list gives db (start-up recovery). */
static size_t orphan_count(IdxDb *db, const char *uuid)
{
    StoError err = {0};
    IdxPending *p = NULL;
    size_t n = 0, found = 0;
    CHECK(idx_pending_list(&err, db, &p, &n));
    for (size_t i = 0; i < n; i++)
        found += strcmp(p[i].uuid, uuid) == 0;
    free(p);
    return found;
}

/* Jobs, pending uuids and "Lock" between processes: a's belong to a while a lives. */
static void test_storage_pg_owners(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxDb *a = open_db(&err, dir), *b = open_db(&err, dir);
    CHECK(a && b);
    if (!a || !b)
        goto out;
    char u[STO_UUID_LEN];
    sto_uuid_new(u);
    CHECK(idx_pending_add(&err, a, u));
    CHECK(idx_job_save(&err, a, "job-a", "{\"n\":1}"));
    JobSeen seen = {0};
    CHECK(idx_jobs_claim(&err, b, job_cb, &seen) && seen.n == 0); /* a is alive */
    CHECK(orphan_count(b, u) == 0);
    CHECK(orphan_count(a, u) == 0); /* its own, in flight: not an orphan either */
    idx_close(a);
    a = NULL;
    /* a is gone: b takes its pending file and its job, once. (PostgreSQL releases a's locks
     * when its backend has handled the closed connection: a few milliseconds later.) */
    for (int i = 0; i < 50 && orphan_count(b, u) == 0; i++)
        usleep(100 * 1000);
    CHECK(orphan_count(b, u) == 1);
    CHECK(idx_jobs_claim(&err, b, job_cb, &seen) && seen.n == 1);
    CHECK_STR(seen.ids[0], "job-a");
    memset(&seen, 0, sizeof seen);
    CHECK(idx_jobs_claim(&err, b, job_cb, &seen) && seen.n == 0);
    IdxDb *c = open_db(&err, dir);
    CHECK(c != NULL);
    memset(&seen, 0, sizeof seen);
    CHECK(c && idx_jobs_claim(&err, c, job_cb, &seen) && seen.n == 0); /* b has it now */
    idx_close(c);
    /* "Lock": true: one such process; the second is refused with a clear error */
    IdxDb *l1 = open_db_lock(&err, dir, true);
    CHECK(l1 != NULL);
    memset(&err, 0, sizeof err);
    IdxDb *l2 = open_db_lock(&err, dir, true);
    CHECK(l2 == NULL && err.code == STO_ERR_DB && strstr(err.message, "locked by another"));
    idx_close(l2);
    idx_close(l1);
    for (int i = 0; i < 50 && !(l2 = open_db_lock(&err, dir, true)); i++)
        usleep(100 * 1000); /* l1's lock goes once its backend has seen the close */
    CHECK(l2 != NULL);
    idx_close(l2);
out:
    idx_close(a);
    idx_close(b);
    rm_tree(dir);
}

/* The PostgreSQL schema: revision recorded; a newer one is refused, the data left alone. */
static void test_storage_pg_schema(void)
{
    char *dir = make_tmpdir();
    StoError err = {0};
    IdxInfo info;
    IdxDb *db = open_db(&err, dir);
    CHECK(db != NULL);
    if (!db)
        goto out;
    CHECK(idx_info(&err, db, &info) && info.schema_revision > 0);
    CHECK_STR(info.backend, "postgresql");
    idx_close(db);
    char name[48], ci[512];
    pg_name(dir, name);
    pg_conninfo(ci, sizeof ci, name);
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQexec(c, "SELECT revision FROM minipacs_schema");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
          atoi(PQgetvalue(r, 0, 0)) == info.schema_revision);
    PQclear(r);
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE minipacs_schema SET revision = %d", info.schema_revision + 1);
    PQclear(PQexec(c, sql));
    memset(&err, 0, sizeof err);
    db = open_db(&err, dir);
    CHECK(db == NULL && err.code == STO_ERR_DB && strstr(err.message, "newer"));
    r = PQexec(c, "SELECT revision FROM minipacs_schema");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) == info.schema_revision + 1);
    PQclear(r);
    PQfinish(c);
out:
    idx_close(db);
    rm_tree(dir);
}

int main(void)
{
    const char *d = getenv("MP_TEST_PG_DIR");
    if (d && *d) {
        char path[1024];
        snprintf(path, sizeof path, "%s/port", d);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(pg_port, sizeof pg_port, f)) {
            fprintf(stderr, "MP_TEST_PG_DIR=%s: no port file (tests/tools/pg.sh start)\n", d);
            return 2;
        }
        fclose(f);
        pg_port[strcspn(pg_port, "\r\n")] = '\0';
        pg_dir = d;
        fprintf(stderr, "index tests on PostgreSQL (cluster %s, port %s)\n", pg_dir, pg_port);
        RUN(test_storage_store_levels);
        RUN(test_storage_already_stored);
        RUN(test_storage_overwrite);
        RUN(test_storage_readback);
        RUN(test_storage_list);
        RUN(test_storage_resources_get);
        RUN(test_storage_delete);
        RUN(test_storage_pending);
        RUN(test_storage_changes);
        RUN(test_storage_jobs);
        RUN(test_storage_concurrency);
        RUN(test_storage_statement_cache);
        RUN(test_storage_find);
        RUN(test_storage_metadata_revisions);
        RUN(test_storage_protection);
        RUN(test_storage_attachments);
        RUN(test_storage_pg_schema);
        RUN(test_storage_pg_invalidations);
        RUN(test_storage_pg_stable_once);
        RUN(test_storage_pg_owners);
        RUN(test_storage_store_rate);
        return CHECK_DONE();
    }
    RUN(test_storage_uuid);
    RUN(test_storage_area_roundtrip);
    RUN(test_storage_area_failure);
    RUN(test_storage_store_levels);
    RUN(test_storage_already_stored);
    RUN(test_storage_overwrite);
    RUN(test_storage_readback);
    RUN(test_storage_list);
    RUN(test_storage_resources_get);
    RUN(test_storage_delete);
    RUN(test_storage_pending);
    RUN(test_storage_changes);
    RUN(test_storage_jobs);
    RUN(test_storage_concurrency);
    RUN(test_storage_open_options);
    RUN(test_storage_schema_revision);
    RUN(test_storage_statement_cache);
    RUN(test_storage_find);
    RUN(test_storage_metadata_revisions);
    RUN(test_storage_protection);
    RUN(test_storage_attachments);
    RUN(test_storage_store_rate);
    return CHECK_DONE();
}
