/*
 * The LMDB metadata index.
 *
 * Named databases (keys are byte strings; '\0' separates names, which can
 * never contain one):
 *
 *   meta          "schema" -> be32 schema version
 *   flows         flow -> ""                       (sorted flow list)
 *   runs          flow\0run -> run record
 *   runs_by_time  flow\0 be64(~created) ~run 0xff -> run summary
 *                 (newest first; ties by run id descending, see
 *                 by_time_key())
 *   steps         flow\0run\0step -> be32 order of first recorded task
 *   tasks         flow\0run\0step\0task\0 be32 attempt -> task record
 *   task_order    flow\0run\0step\0 be64 seq -> task id
 *   counters      flow\0run -> be64 last task id handed out
 *
 * The run summary (u8 1, be32 status, then every system and user tag
 * NUL-terminated) lets run listings filter by status and tags without
 * decoding whole run records, which may carry large parameter values.
 *
 * Transactions: every transaction holds meta->rw shared. LMDB itself
 * serialises writers across threads and processes. When the map is full
 * the writer aborts, takes meta->rw exclusive (no transaction of this
 * process alive, as mdb_env_set_mapsize() requires), doubles the map and
 * redoes the whole transaction; so write bodies must be restartable and
 * only publish results after the commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/meta_int.h"

#define META_SCHEMA 1u
#define DEFAULT_MAP ((uint64_t)64 << 20)
/* The map only reserves address space, so the ceiling can be generous. */
#define MAX_MAP (sizeof(size_t) >= 8 ? (size_t)1 << 40 : (size_t)1 << 30)
#define KEY_CAP 512
#define SUMMARY_VERSION 1

/* Internal: a write body hit MDB_MAP_FULL; never escapes this file. */
#define META_EMAPFULL (-1000)

/* ------------------------------------------------------------ helpers */

static int lmdb_error(const mf_meta *m, int rc, const char *op)
{
    int code;
    switch (rc) {
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        code = MF_ECORRUPT;
        break;
    case MDB_VERSION_MISMATCH:
        code = MF_EVERSION;
        break;
    case MDB_MAP_FULL:
        code = MF_ENOSPACE;
        break;
    case ENOMEM:
        code = MF_ENOMEM;
        break;
    case ENOENT:
        code = MF_ENOTFOUND;
        break;
    default:
        code = MF_EIO;
        break;
    }
    return mf__error_set(code, "metadata index '%s': %s: %s", m->dir, op, mdb_strerror(rc));
}

/* In write bodies: MAP_FULL restarts the transaction on a bigger map. */
static int wr_error(const mf_meta *m, int rc, const char *op)
{
    return rc == MDB_MAP_FULL ? META_EMAPFULL : lmdb_error(m, rc, op);
}

static volatile unsigned g_fork_gen;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    g_fork_gen++;
}

static void register_atfork(void)
{
    /* glibc drops the handler if the library is unloaded. */
    pthread_atfork(NULL, NULL, on_fork_child);
}

unsigned mf__meta_fork_gen(void)
{
    return g_fork_gen;
}

int mf__meta_check_pid(const mf_meta *m, const char *op)
{
    if (m->fork_gen == g_fork_gen)
        return MF_OK;
    pid_t me = getpid();
    return mf__error_set(MF_ESTATE,
                         "metadata index '%s': %s: opened by process %ld, used in "
                         "process %ld after fork(); open the index again in the child",
                         m->dir, op, (long)m->pid, (long)me);
}

static int check_writable(const mf_meta *m, const char *op)
{
    int rc = mf__meta_check_pid(m, op);
    if (rc == MF_OK && m->readonly)
        rc = mf__error_set(MF_ESTATE, "metadata index '%s': %s: opened read-only", m->dir, op);
    return rc;
}

static void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be64_put(unsigned char *p, uint64_t v)
{
    be32_put(p, (uint32_t)(v >> 32));
    be32_put(p + 4, (uint32_t)v);
}

static uint64_t be64_get(const unsigned char *p)
{
    return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

/* Keys are built on the stack; overflow is recorded and checked once. */
typedef struct keybuf {
    size_t n;
    bool over;
    unsigned char b[KEY_CAP];
} keybuf;

static void k_init(keybuf *k)
{
    k->n = 0;
    k->over = false;
}

static void k_add(keybuf *k, const void *p, size_t n)
{
    if (k->over || n > sizeof k->b - k->n) {
        k->over = true;
        return;
    }
    memcpy(k->b + k->n, p, n);
    k->n += n;
}

/* A name followed by its '\0' separator. */
static void k_name(keybuf *k, const char *s)
{
    k_add(k, s, strlen(s) + 1);
}

static void k_last(keybuf *k, const char *s)
{
    k_add(k, s, strlen(s));
}

static void k_be32(keybuf *k, uint32_t v)
{
    unsigned char b[4];
    be32_put(b, v);
    k_add(k, b, 4);
}

static void k_be64(keybuf *k, uint64_t v)
{
    unsigned char b[8];
    be64_put(b, v);
    k_add(k, b, 8);
}

static bool k_fits(const mf_meta *m, const keybuf *k)
{
    return !k->over && k->n > 0 && k->n <= m->max_key;
}

static MDB_val k_val(keybuf *k)
{
    MDB_val v = { k->n, k->b };
    return v;
}

static bool has_prefix(const MDB_val *key, const keybuf *prefix)
{
    return key->mv_size >= prefix->n && memcmp(key->mv_data, prefix->b, prefix->n) == 0;
}

static int key_too_long(const mf_meta *m, const char *what)
{
    return mf__error_set(MF_EINVAL, "metadata index '%s': names of %s too long for an index key "
                         "(at most %zu bytes together)", m->dir, what, m->max_key);
}

/* Newest first: invert the creation time (sign-flipped so negative times
 * order too), and for equal times store the run id byte-complemented with
 * a 0xff terminator, which reverses bytewise order exactly (ids hold no
 * 0x00, so complemented ids hold no 0xff). */
static void by_time_key(keybuf *k, const char *flow, int64_t created_us, const char *run_id)
{
    k_init(k);
    k_name(k, flow);
    k_be64(k, ~((uint64_t)created_us ^ ((uint64_t)1 << 63)));
    size_t n = strlen(run_id);
    if (n + 1 > sizeof k->b - k->n) {
        k->over = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        k->b[k->n + i] = (unsigned char)~(unsigned char)run_id[i];
    k->b[k->n + n] = 0xff;
    k->n += n + 1;
}

static void run_key(keybuf *k, const char *flow, const char *run_id)
{
    k_init(k);
    k_name(k, flow);
    k_last(k, run_id);
}

/* flow\0run\0step\0task\0 : the prefix of every attempt of a task. */
static void task_prefix(keybuf *k, const char *flow, const char *run_id, const char *step,
                        const char *task_id)
{
    k_init(k);
    k_name(k, flow);
    k_name(k, run_id);
    k_name(k, step);
    k_name(k, task_id);
}

/* ------------------------------------------------------------ map size */

static size_t env_map_size(const mf_meta *m)
{
    MDB_envinfo info;
    mdb_env_info(m->env, &info);
    return info.me_mapsize;
}

/* Another process grew the map past ours (MDB_MAP_RESIZED): adopt the
 * size recorded in the file. */
static int adopt_map(mf_meta *m)
{
    pthread_rwlock_wrlock(&m->rw);
    int rc = mdb_env_set_mapsize(m->env, 0);
    if (rc == 0)
        m->map_size = env_map_size(m);
    pthread_rwlock_unlock(&m->rw);
    return rc ? lmdb_error(m, rc, "adopting the grown map") : MF_OK;
}

/* Double the map, unless another thread already changed it since `seen`. */
static int grow_map(mf_meta *m, size_t seen)
{
    int rc = MF_OK;
    pthread_rwlock_wrlock(&m->rw);
    if (m->map_size == seen) {
        if (seen >= MAX_MAP) {
            rc = mf__error_set(MF_ENOSPACE, "metadata index '%s': map full at its limit of %zu bytes",
                               m->dir, seen);
        } else {
            size_t want = seen > MAX_MAP / 2 ? MAX_MAP : seen * 2;
            int mrc = mdb_env_set_mapsize(m->env, want);
            if (mrc)
                rc = mrc == ENOMEM || mrc == EINVAL
                   ? mf__error_set(MF_ENOSPACE, "metadata index '%s': cannot grow the map to %zu bytes: %s",
                                   m->dir, want, mdb_strerror(mrc))
                   : lmdb_error(m, mrc, "growing the map");
            else
                m->map_size = env_map_size(m);
        }
    }
    pthread_rwlock_unlock(&m->rw);
    return rc;
}

/* ------------------------------------------------------------ transactions */

typedef int (*write_fn)(mf_meta *m, MDB_txn *txn, void *ctx);

/* Run `fn` in a write transaction and commit, growing the map and
 * restarting as needed. `fn` returns MF_OK to commit, anything else to
 * abort (META_EMAPFULL to grow and retry). */
static int meta_write(mf_meta *m, const char *op, write_fn fn, void *ctx)
{
    for (;;) {
        pthread_rwlock_rdlock(&m->rw);
        size_t seen = m->map_size;
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(m->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED) {
            pthread_rwlock_unlock(&m->rw);
            rc = adopt_map(m);
            if (rc != MF_OK)
                return rc;
            continue;
        }
        if (rc) {
            pthread_rwlock_unlock(&m->rw);
            return lmdb_error(m, rc, op);
        }
        rc = fn(m, txn, ctx);
        if (rc == MF_OK) {
            int mrc = mdb_txn_commit(txn);
            if (mrc)
                rc = wr_error(m, mrc, op);
        } else {
            mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&m->rw);
        if (rc != META_EMAPFULL)
            return rc;
        rc = grow_map(m, seen);
        if (rc != MF_OK)
            return rc;
    }
}

static int read_begin(mf_meta *m, const char *op, MDB_txn **txn)
{
    int rc = mf__meta_check_pid(m, op);
    if (rc != MF_OK)
        return rc;
    for (;;) {
        pthread_rwlock_rdlock(&m->rw);
        rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, txn);
        if (rc == 0)
            return MF_OK;
        pthread_rwlock_unlock(&m->rw);
        if (rc != MDB_MAP_RESIZED)
            return lmdb_error(m, rc, op);
        rc = adopt_map(m);
        if (rc != MF_OK)
            return rc;
    }
}

static void read_end(mf_meta *m, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&m->rw);
}

/* read_begin() plus a cursor on `dbi`; the caller closes the cursor with
 * read_cursor_close(), then calls read_end(). */
static int read_cursor(mf_meta *m, MDB_dbi dbi, const char *op, MDB_txn **txn,
                       MDB_cursor **cur)
{
    int rc = read_begin(m, op, txn);
    if (rc != MF_OK)
        return rc;
    int mrc = mdb_cursor_open(*txn, dbi, cur);
    if (mrc) {
        read_end(m, *txn);
        return lmdb_error(m, mrc, op);
    }
    return MF_OK;
}

/* Close a read_cursor() cursor after a scan. An LMDB error that stopped
 * the scan (rather than its running off the end) becomes the result,
 * unless an earlier error stands. */
static int read_cursor_close(const mf_meta *m, MDB_cursor *cur, int rc, int mrc,
                             const char *op)
{
    if (rc == MF_OK && mrc && mrc != MDB_NOTFOUND)
        rc = lmdb_error(m, mrc, op);
    mdb_cursor_close(cur);
    return rc;
}

/* ------------------------------------------------------------ open/close */

static int open_dbis(mf_meta *m, MDB_txn *txn, unsigned flags)
{
    static const char *const names[] = {
        "meta", "flows", "runs", "runs_by_time", "tasks", "task_order", "steps", "counters"
    };
    MDB_dbi *dbis[] = {
        &m->db_meta, &m->db_flows, &m->db_runs, &m->db_runs_by_time, &m->db_tasks,
        &m->db_task_order, &m->db_steps, &m->db_counters
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rc = mdb_dbi_open(txn, names[i], flags, dbis[i]);
        if (rc == MDB_NOTFOUND)
            return mf__error_set(MF_ENOTFOUND, "metadata index '%s' is not initialised "
                                 "(no '%s' database)", m->dir, names[i]);
        if (rc)
            return wr_error(m, rc, "opening databases");
    }
    return MF_OK;
}

static int check_schema(mf_meta *m, MDB_txn *txn, bool create)
{
    static const char skey[] = "schema";
    MDB_val k = { sizeof skey - 1, (void *)skey }, v;
    int rc = mdb_get(txn, m->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        if (!create)
            return mf__error_set(MF_ENOTFOUND, "metadata index '%s' is not initialised (no schema)",
                                 m->dir);
        unsigned char b[4];
        be32_put(b, META_SCHEMA);
        v.mv_size = 4;
        v.mv_data = b;
        rc = mdb_put(txn, m->db_meta, &k, &v, 0);
        return rc ? wr_error(m, rc, "writing the schema version") : MF_OK;
    }
    if (rc)
        return lmdb_error(m, rc, "reading the schema version");
    if (v.mv_size != 4)
        return mf__error_set(MF_ECORRUPT, "metadata index '%s': bad schema record", m->dir);
    uint32_t schema = be32_get(v.mv_data);
    if (schema > META_SCHEMA)
        return mf__error_set(MF_EVERSION, "metadata index '%s': schema %u is newer than this "
                             "library supports (%u)", m->dir, (unsigned)schema, META_SCHEMA);
    return MF_OK;
}

static int init_fn(mf_meta *m, MDB_txn *txn, void *ctx)
{
    (void)ctx;
    int rc = open_dbis(m, txn, MDB_CREATE);
    return rc == MF_OK ? check_schema(m, txn, true) : rc;
}

static int init_readonly(mf_meta *m)
{
    MDB_txn *txn;
    int rc = read_begin(m, "opening", &txn);
    if (rc != MF_OK)
        return rc;
    rc = open_dbis(m, txn, 0);
    if (rc == MF_OK)
        rc = check_schema(m, txn, false);
    if (rc == MF_OK) {
        /* Commit, not abort: DBI handles opened in a transaction only
         * outlive it when it commits. */
        int mrc = mdb_txn_commit(txn);
        pthread_rwlock_unlock(&m->rw);
        return mrc ? lmdb_error(m, mrc, "opening databases") : MF_OK;
    }
    read_end(m, txn);
    return rc;
}

int mf__meta_open(mf_meta **out, const char *dir, uint64_t map_size, bool readonly)
{
    if (!out || !dir || !*dir)
        return mf__error_set(MF_EINVAL, "metadata index: no directory given");
    *out = NULL;
    if (map_size == 0)
        map_size = DEFAULT_MAP;
    if (map_size > MAX_MAP)
        map_size = MAX_MAP;

    if (readonly) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return mf__error_errno(errno, "cannot open metadata index", dir);
    } else {
        int rc = mf__mkdir_p(dir);
        if (rc != MF_OK)
            return mf__error_wrap("metadata index");
    }

    mf_meta *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return mf__error_oom();
    }
    m->readonly = readonly;
    pthread_once(&g_atfork_once, register_atfork);
    m->fork_gen = g_fork_gen;
    m->pid = getpid();

    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
#ifdef PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
    /* A map resize must not starve behind a steady stream of readers;
     * nobody takes the lock recursively. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&m->rw, &ra);
    pthread_rwlockattr_destroy(&ra);

    int rc = mdb_env_create(&m->env);
    if (rc) {
        m->env = NULL;
        rc = lmdb_error(m, rc, "creating the environment");
        goto fail;
    }
    mdb_env_set_maxdbs(m->env, 16);
    /* Every concurrent read transaction of every process takes a slot. */
    mdb_env_set_maxreaders(m->env, 1022);
    mdb_env_set_mapsize(m->env, (size_t)map_size);
    /* NOTLS: read transactions belong to no thread, so any thread may
     * finish one. NOMETASYNC: one fsync per commit instead of two; a system
     * crash may lose the last commit but never corrupts the index (and the
     * datastore can rebuild it). */
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC | (readonly ? MDB_RDONLY : 0);
    rc = mdb_env_open(m->env, dir, flags, 0664);
    if (rc) {
        rc = rc == ENOENT
           ? mf__error_set(MF_ENOTFOUND, "metadata index '%s' does not exist", dir)
           : lmdb_error(m, rc, "opening");
        goto fail;
    }
    /* Reader slots of processes that died inside a read transaction would
     * pin old pages forever. */
    int dead = 0;
    mdb_reader_check(m->env, &dead);

    /* Start from the larger of the size recorded in the file (grown
     * earlier, maybe by another process) and the one asked for. */
    if (mdb_env_set_mapsize(m->env, 0) == 0 && env_map_size(m) < map_size)
        mdb_env_set_mapsize(m->env, (size_t)map_size);
    m->map_size = env_map_size(m);
    m->max_key = (size_t)mdb_env_get_maxkeysize(m->env);
    if (m->max_key > KEY_CAP)
        m->max_key = KEY_CAP;

    rc = readonly ? init_readonly(m) : meta_write(m, "initialising", init_fn, NULL);
    if (rc != MF_OK)
        goto fail;
    *out = m;
    return MF_OK;

fail:
    if (m->env)
        mdb_env_close(m->env);
    pthread_rwlock_destroy(&m->rw);
    free(m->dir);
    free(m);
    return rc;
}

void mf__meta_close(mf_meta *m)
{
    if (!m)
        return;
    /* In a fork() child mdb_env_close() would clear reader slots that
     * belong to the parent (they carry the parent's pid, which LMDB
     * remembers); free only our memory and leave the mapping alone. */
    if (m->fork_gen == g_fork_gen) {
        mdb_env_close(m->env);
        pthread_rwlock_destroy(&m->rw);
    }
    free(m->dir);
    free(m);
}

uint64_t mf__meta_map_size(mf_meta *m)
{
    if (!m)
        return 0;
    pthread_rwlock_rdlock(&m->rw);
    size_t n = m->map_size;
    pthread_rwlock_unlock(&m->rw);
    return n;
}

const char *mf__meta_dir(const mf_meta *m)
{
    return m ? m->dir : NULL;
}

/* ------------------------------------------------------------ runs */

static int check_run_names(const char *flow, const char *run_id)
{
    int rc = mf__check_flow_name(flow);
    if (rc == MF_OK && run_id)
        rc = mf__check_id("run id", run_id);
    return rc;
}

static int summary_build(const mf__run_record *r, mf_buf *out)
{
    unsigned char head[5];
    head[0] = SUMMARY_VERSION;
    be32_put(head + 1, (uint32_t)r->status);
    int rc = mf__buf_set(out, head, sizeof head);
    for (size_t i = 0; i < r->nsys_tags && rc == MF_OK; i++)
        rc = mf__buf_put(out, r->sys_tags[i], strlen(r->sys_tags[i]) + 1);
    for (size_t i = 0; i < r->ntags && rc == MF_OK; i++)
        rc = mf__buf_put(out, r->tags[i], strlen(r->tags[i]) + 1);
    return rc;
}

/* Write the run record, its by-time entry and its flow. */
static int run_write(mf_meta *m, MDB_txn *txn, const mf__run_record *r,
                     const mf_buf *rec, const mf_buf *sum)
{
    keybuf k;
    run_key(&k, r->flow, r->run_id);
    MDB_val key = k_val(&k), val = { rec->size, rec->ptr };
    int rc = mdb_put(txn, m->db_runs, &key, &val, 0);
    if (rc)
        return wr_error(m, rc, "writing a run");

    by_time_key(&k, r->flow, r->created_us, r->run_id);
    key = k_val(&k);
    val.mv_size = sum->size;
    val.mv_data = sum->ptr;
    rc = mdb_put(txn, m->db_runs_by_time, &key, &val, 0);
    if (rc)
        return wr_error(m, rc, "writing a run");

    k_init(&k);
    k_last(&k, r->flow);
    key = k_val(&k);
    val.mv_size = 0;
    val.mv_data = "";
    rc = mdb_put(txn, m->db_flows, &key, &val, 0);
    return rc ? wr_error(m, rc, "writing a flow") : MF_OK;
}

typedef struct insert_ctx {
    mf__run_record *r;
    bool lock;           /* take the liveness lock inside the transaction */
    bool locked;         /* ... and we hold it (release if we do not commit) */
    char id[32];         /* the allocated run id */
    const char *run_id;  /* the id used */
    int64_t created_us;
    mf_buf rec, sum;
} insert_ctx;

static int insert_fn(mf_meta *m, MDB_txn *txn, void *vctx)
{
    insert_ctx *c = vctx;
    mf__run_record *r = c->r;
    keybuf k;
    MDB_val key, val;
    int rc;

    /* A previous try failed to commit: its lock (maybe for another id)
     * must go. */
    if (c->locked) {
        mf__meta_run_unlock(m, r->flow, c->run_id);
        c->locked = false;
    }

    if (r->run_id) {
        c->run_id = r->run_id;
        c->created_us = r->created_us ? r->created_us : mf__now_us();
        run_key(&k, r->flow, r->run_id);
        if (!k_fits(m, &k))
            return key_too_long(m, "flow and run");
        key = k_val(&k);
        rc = mdb_get(txn, m->db_runs, &key, &val);
        if (rc == 0)
            return mf__error_set(MF_EEXISTS, "run '%s/%s' already exists", r->flow, r->run_id);
        if (rc != MDB_NOTFOUND)
            return lmdb_error(m, rc, "reading a run");
    } else {
        /* Metaflow's local metadata uses the creation time in microseconds
         * as the run id. Allocating inside the write transaction makes the
         * check-and-take atomic across processes: LMDB admits one writer. */
        int64_t t = mf__now_us();
        for (;;) {
            snprintf(c->id, sizeof c->id, "%" PRId64, t);
            run_key(&k, r->flow, c->id);
            if (!k_fits(m, &k))
                return key_too_long(m, "flow and run");
            key = k_val(&k);
            rc = mdb_get(txn, m->db_runs, &key, &val);
            if (rc == MDB_NOTFOUND)
                break;
            if (rc)
                return lmdb_error(m, rc, "reading a run");
            t++;
        }
        c->run_id = c->id;
        c->created_us = r->created_us ? r->created_us : t;
    }

    mf__run_record tmp = *r;
    tmp.run_id = (char *)c->run_id;
    tmp.created_us = c->created_us;
    by_time_key(&k, tmp.flow, tmp.created_us, tmp.run_id);
    if (!k_fits(m, &k))
        return key_too_long(m, "flow and run");
    rc = mf__run_record_encode(&tmp, &c->rec);
    if (rc == MF_OK)
        rc = summary_build(&tmp, &c->sum);
    if (rc != MF_OK)
        return rc;
    if (c->lock) {
        /* Before the commit, so no reader ever sees this run running
         * without its lock (it would read as crashed). */
        rc = mf__meta_run_lock_acquire(m, tmp.flow, tmp.run_id, &c->locked);
        if (rc != MF_OK)
            return rc;
    }
    return run_write(m, txn, &tmp, &c->rec, &c->sum);
}

static int run_insert(mf_meta *m, mf__run_record *r, bool lock)
{
    if (!m || !r || !r->flow)
        return mf__error_set(MF_EINVAL, "run insert: NULL argument");
    int rc = check_writable(m, "inserting a run");
    if (rc == MF_OK)
        rc = check_run_names(r->flow, r->run_id);
    if (rc != MF_OK)
        return rc;
    insert_ctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    c.lock = lock;
    c.rec = (mf_buf)MF_BUF_INIT;
    c.sum = (mf_buf)MF_BUF_INIT;
    /* Allocated up front so nothing can fail after the commit. */
    char *id = r->run_id ? NULL : malloc(sizeof c.id);
    if (!r->run_id && !id)
        return mf__error_oom();
    rc = meta_write(m, "inserting a run", insert_fn, &c);
    if (rc == MF_OK) {
        if (id) {
            memcpy(id, c.id, sizeof c.id);
            r->run_id = id;
            id = NULL;
        }
        r->created_us = c.created_us;
    } else if (c.locked) {
        mf__meta_run_unlock(m, r->flow, c.run_id);
    }
    free(id);
    mf_buf_dispose(&c.rec);
    mf_buf_dispose(&c.sum);
    return rc;
}

int mf__meta_run_insert(mf_meta *m, mf__run_record *r)
{
    return run_insert(m, r, false);
}

int mf__meta_run_insert_locked(mf_meta *m, mf__run_record *r)
{
    return run_insert(m, r, true);
}

typedef struct put_ctx {
    const mf__run_record *r;
    mf_buf rec, sum;
} put_ctx;

/* Remove the by-time entry of flow/run whatever its time, by scanning the
 * flow: used when the old record cannot be decoded. */
static int by_time_delete_scan(mf_meta *m, MDB_txn *txn, const char *flow, const char *run_id)
{
    keybuf prefix, probe;
    k_init(&prefix);
    k_name(&prefix, flow);
    by_time_key(&probe, flow, 0, run_id);
    /* The id part is what follows the prefix and the 8 time bytes. */
    const unsigned char *idpart = probe.b + prefix.n + 8;
    size_t idlen = probe.n - prefix.n - 8;

    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, m->db_runs_by_time, &cur);
    if (rc)
        return lmdb_error(m, rc, "updating a run");
    MDB_val key = k_val(&prefix), val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && has_prefix(&key, &prefix)) {
        if (key.mv_size == prefix.n + 8 + idlen &&
            memcmp((unsigned char *)key.mv_data + prefix.n + 8, idpart, idlen) == 0) {
            rc = mdb_cursor_del(cur, 0);
            if (rc)
                break;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? MF_OK : wr_error(m, rc, "updating a run");
}

static int put_fn(mf_meta *m, MDB_txn *txn, void *vctx)
{
    put_ctx *c = vctx;
    const mf__run_record *r = c->r;
    keybuf k;
    run_key(&k, r->flow, r->run_id);
    MDB_val key = k_val(&k), val;
    int rc = mdb_get(txn, m->db_runs, &key, &val);
    if (rc == 0) {
        /* Drop the old by-time entry: the creation time may have changed
         * (a rebuild from a different copy of the record). */
        mf__run_record old;
        char what[512];
        snprintf(what, sizeof what, "%s/%s", r->flow, r->run_id);
        if (mf__run_record_decode(&old, val.mv_data, val.mv_size, what) == MF_OK) {
            keybuf ok;
            by_time_key(&ok, r->flow, old.created_us, r->run_id);
            mf__run_record_clear(&old);
            MDB_val okey = k_val(&ok);
            rc = mdb_del(txn, m->db_runs_by_time, &okey, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return wr_error(m, rc, "updating a run");
        } else {
            mf_error_clear();
            rc = by_time_delete_scan(m, txn, r->flow, r->run_id);
            if (rc != MF_OK)
                return rc;
        }
    } else if (rc != MDB_NOTFOUND) {
        return lmdb_error(m, rc, "reading a run");
    }
    return run_write(m, txn, r, &c->rec, &c->sum);
}

int mf__meta_run_put(mf_meta *m, const mf__run_record *r)
{
    if (!m || !r || !r->flow || !r->run_id)
        return mf__error_set(MF_EINVAL, "run put: NULL argument");
    int rc = check_writable(m, "writing a run");
    if (rc == MF_OK)
        rc = check_run_names(r->flow, r->run_id);
    if (rc != MF_OK)
        return rc;
    keybuf k;
    by_time_key(&k, r->flow, r->created_us, r->run_id);
    if (!k_fits(m, &k))
        return key_too_long(m, "flow and run");

    put_ctx c = { r, MF_BUF_INIT, MF_BUF_INIT };
    rc = mf__run_record_encode(r, &c.rec);
    if (rc == MF_OK)
        rc = summary_build(r, &c.sum);
    if (rc == MF_OK)
        rc = meta_write(m, "writing a run", put_fn, &c);
    mf_buf_dispose(&c.rec);
    mf_buf_dispose(&c.sum);
    return rc;
}

int mf__meta_run_get(mf_meta *m, const char *flow, const char *run_id, mf__run_record *out)
{
    if (!m || !flow || !run_id || !out)
        return mf__error_set(MF_EINVAL, "run get: NULL argument");
    memset(out, 0, sizeof *out);
    keybuf k;
    run_key(&k, flow, run_id);
    if (!k_fits(m, &k))
        return mf__error_set(MF_ENOTFOUND, "run '%s/%s' not found", flow, run_id);
    MDB_txn *txn;
    int rc = read_begin(m, "reading a run", &txn);
    if (rc != MF_OK)
        return rc;
    MDB_val key = k_val(&k), val;
    rc = mdb_get(txn, m->db_runs, &key, &val);
    if (rc == MDB_NOTFOUND) {
        rc = mf__error_set(MF_ENOTFOUND, "run '%s/%s' not found", flow, run_id);
    } else if (rc) {
        rc = lmdb_error(m, rc, "reading a run");
    } else {
        char what[512];
        snprintf(what, sizeof what, "%s/%s", flow, run_id);
        rc = mf__run_record_decode(out, val.mv_data, val.mv_size, what);
        if (rc != MF_OK)
            mf__error_wrap("metadata index '%s'", m->dir);
    }
    read_end(m, txn);
    return rc;
}

/* Does the NUL-terminated tag list contain `tag`? */
static bool tags_have(const unsigned char *p, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    while (n > 0) {
        const unsigned char *z = memchr(p, '\0', n);
        size_t len = (size_t)(z - p);
        if (len == tl && memcmp(p, tag, tl) == 0)
            return true;
        n -= len + 1;
        p = z + 1;
    }
    return false;
}

int mf__meta_run_list(mf_meta *m, const char *flow, const char *const *tags, size_t ntags,
                      uint32_t flags, size_t limit, mf_strlist *out)
{
    if (!m || !flow || !out || (ntags && !tags))
        return mf__error_set(MF_EINVAL, "run list: NULL argument");
    for (size_t i = 0; i < ntags; i++)
        if (!tags[i])
            return mf__error_set(MF_EINVAL, "run list: NULL tag");
    keybuf prefix;
    k_init(&prefix);
    k_name(&prefix, flow);
    if (!k_fits(m, &prefix))
        return MF_OK; /* no such flow can exist */

    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = read_cursor(m, m->db_runs_by_time, "listing runs", &txn, &cur);
    if (rc != MF_OK)
        return rc;
    size_t found = 0;
    MDB_val key = k_val(&prefix), val;
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && has_prefix(&key, &prefix) && (limit == 0 || found < limit)) {
        const unsigned char *kb = key.mv_data, *vb = val.mv_data;
        size_t idlen = key.mv_size - prefix.n;
        if (idlen < 8 + 2 || kb[key.mv_size - 1] != 0xff || val.mv_size < 5 ||
            vb[0] != SUMMARY_VERSION || (val.mv_size > 5 && vb[val.mv_size - 1] != '\0')) {
            rc = mf__error_set(MF_ECORRUPT, "metadata index '%s': bad run listing entry of flow '%s'",
                               m->dir, flow);
            break;
        }
        idlen -= 8 + 1;
        int32_t status = (int32_t)be32_get(vb + 1);
        bool match = !(flags & MF_LIST_SUCCESSFUL) || status == MF_RUN_SUCCEEDED;
        for (size_t i = 0; i < ntags && match; i++)
            match = tags_have(vb + 5, val.mv_size - 5, tags[i]);
        if (match) {
            char id[KEY_CAP];
            const unsigned char *ip = kb + prefix.n + 8;
            for (size_t i = 0; i < idlen; i++)
                id[i] = (char)~ip[i];
            rc = mf__strlist_pushn(out, id, idlen);
            if (rc != MF_OK)
                break;
            found++;
        }
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    rc = read_cursor_close(m, cur, rc, mrc, "listing runs");
    read_end(m, txn);
    return rc;
}

int mf__meta_flow_list(mf_meta *m, mf_strlist *out)
{
    if (!m || !out)
        return mf__error_set(MF_EINVAL, "flow list: NULL argument");
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = read_cursor(m, m->db_flows, "listing flows", &txn, &cur);
    if (rc != MF_OK)
        return rc;
    MDB_val key, val;
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (mrc == 0) {
        rc = mf__strlist_pushn(out, key.mv_data, key.mv_size);
        if (rc != MF_OK)
            break;
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    rc = read_cursor_close(m, cur, rc, mrc, "listing flows");
    read_end(m, txn);
    return rc;
}

/* ------------------------------------------------------------ tasks */

typedef struct counter_ctx {
    const char *flow, *run_id;
    uint64_t value;
    uint64_t count; /* ids to take (1 for task_id_next) */
} counter_ctx;

static int counter_read(mf_meta *m, MDB_txn *txn, keybuf *k, const char *flow,
                        const char *run_id, uint64_t *out)
{
    run_key(k, flow, run_id);
    MDB_val key = k_val(k), val;
    int rc = mdb_get(txn, m->db_counters, &key, &val);
    *out = 0;
    if (rc == MDB_NOTFOUND)
        return MF_OK;
    if (rc)
        return lmdb_error(m, rc, "reading a task counter");
    if (val.mv_size != 8)
        return mf__error_set(MF_ECORRUPT, "metadata index '%s': bad task counter of run '%s/%s'",
                             m->dir, flow, run_id);
    *out = be64_get(val.mv_data);
    return MF_OK;
}

static int counter_write(mf_meta *m, MDB_txn *txn, keybuf *k, uint64_t v)
{
    unsigned char b[8];
    be64_put(b, v);
    MDB_val key = k_val(k), val = { 8, b };
    int rc = mdb_put(txn, m->db_counters, &key, &val, 0);
    return rc ? wr_error(m, rc, "writing a task counter") : MF_OK;
}

static int task_id_fn(mf_meta *m, MDB_txn *txn, void *vctx)
{
    counter_ctx *c = vctx;
    keybuf k;
    int rc = counter_read(m, txn, &k, c->flow, c->run_id, &c->value);
    if (rc != MF_OK)
        return rc;
    c->value += c->count;
    return counter_write(m, txn, &k, c->value);
}

int mf__meta_task_id_reserve(mf_meta *m, const char *flow, const char *run_id, uint64_t n,
                             uint64_t *first)
{
    if (!m || !flow || !run_id || !first || n == 0)
        return mf__error_set(MF_EINVAL, "task ids: bad argument");
    int rc = check_writable(m, "allocating task ids");
    if (rc == MF_OK)
        rc = check_run_names(flow, run_id);
    if (rc != MF_OK)
        return rc;
    counter_ctx c = { flow, run_id, 0, n };
    rc = meta_write(m, "allocating task ids", task_id_fn, &c);
    if (rc == MF_OK)
        *first = c.value - n + 1;
    return rc;
}

int mf__meta_task_id_next(mf_meta *m, const char *flow, const char *run_id, mf_buf *out)
{
    if (!m || !flow || !run_id || !out)
        return mf__error_set(MF_EINVAL, "task id: NULL argument");
    int rc = check_writable(m, "allocating a task id");
    if (rc == MF_OK)
        rc = check_run_names(flow, run_id);
    if (rc != MF_OK)
        return rc;
    counter_ctx c = { flow, run_id, 0, 1 };
    rc = meta_write(m, "allocating a task id", task_id_fn, &c);
    if (rc != MF_OK)
        return rc;
    char s[24];
    int n = snprintf(s, sizeof s, "%" PRIu64, c.value);
    return mf__buf_set(out, s, (size_t)n);
}

/* A task id made only of digits (as the counter hands out), as a number. */
static bool numeric_id(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s || strlen(s) > 19)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

typedef struct task_ctx {
    const mf__task_record *t;
    mf_buf rec;
} task_ctx;

typedef struct task_many_ctx {
    const mf__task_record *const *t;
    size_t n;
    mf_buf *recs;
} task_many_ctx;

/* First record of a task in its step: append it to the step's task order,
 * and the step to the run's step order if it is new. */
static int task_order_append(mf_meta *m, MDB_txn *txn, const mf__task_record *t)
{
    keybuf s, k;
    k_init(&s);
    k_name(&s, t->flow);
    k_name(&s, t->run_id);
    k_name(&s, t->step);

    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, m->db_task_order, &cur);
    if (rc)
        return lmdb_error(m, rc, "recording a task");
    k = s;
    k_be64(&k, UINT64_MAX);
    MDB_val key = k_val(&k), val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    uint64_t seq = 1;
    if (rc == 0 && has_prefix(&key, &s) && key.mv_size == s.n + 8)
        seq = be64_get((unsigned char *)key.mv_data + s.n) + 1;
    else if (rc && rc != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return lmdb_error(m, rc, "recording a task");
    }
    mdb_cursor_close(cur);

    k = s;
    k_be64(&k, seq);
    key = k_val(&k);
    val.mv_size = strlen(t->task_id);
    val.mv_data = t->task_id;
    rc = mdb_put(txn, m->db_task_order, &key, &val, 0);
    if (rc)
        return wr_error(m, rc, "recording a task");

    /* Step order: flow\0run\0step -> be32. Runs have few steps, so the
     * next number comes from a scan rather than another counter. */
    keybuf sk, rp;
    k_init(&sk);
    k_name(&sk, t->flow);
    k_name(&sk, t->run_id);
    rp = sk;
    k_last(&sk, t->step);
    key = k_val(&sk);
    rc = mdb_get(txn, m->db_steps, &key, &val);
    if (rc == 0)
        return MF_OK;
    if (rc != MDB_NOTFOUND)
        return lmdb_error(m, rc, "recording a step");
    rc = mdb_cursor_open(txn, m->db_steps, &cur);
    if (rc)
        return lmdb_error(m, rc, "recording a step");
    uint32_t next = 1;
    key = k_val(&rp);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && has_prefix(&key, &rp)) {
        if (val.mv_size == 4 && be32_get(val.mv_data) >= next)
            next = be32_get(val.mv_data) + 1;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return lmdb_error(m, rc, "recording a step");
    unsigned char b[4];
    be32_put(b, next);
    key = k_val(&sk);
    val.mv_size = 4;
    val.mv_data = b;
    rc = mdb_put(txn, m->db_steps, &key, &val, 0);
    return rc ? wr_error(m, rc, "recording a step") : MF_OK;
}

static int task_put_fn(mf_meta *m, MDB_txn *txn, void *vctx)
{
    task_ctx *c = vctx;
    const mf__task_record *t = c->t;
    keybuf p, k;
    task_prefix(&p, t->flow, t->run_id, t->step, t->task_id);

    /* Is any attempt of this task recorded already? */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, m->db_tasks, &cur);
    if (rc)
        return lmdb_error(m, rc, "recording a task");
    MDB_val key = k_val(&p), val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    bool known = rc == 0 && has_prefix(&key, &p);
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return lmdb_error(m, rc, "recording a task");
    if (!known) {
        rc = task_order_append(m, txn, t);
        if (rc != MF_OK)
            return rc;
    }

    k = p;
    k_be32(&k, t->attempt);
    key = k_val(&k);
    val.mv_size = c->rec.size;
    val.mv_data = c->rec.ptr;
    rc = mdb_put(txn, m->db_tasks, &key, &val, 0);
    if (rc)
        return wr_error(m, rc, "recording a task");

    /* Tasks recorded with explicit numeric ids (a rebuild, a resume clone)
     * push the counter past them, so the ids it hands out stay unique. */
    uint64_t id, cnt;
    if (numeric_id(t->task_id, &id)) {
        rc = counter_read(m, txn, &k, t->flow, t->run_id, &cnt);
        if (rc == MF_OK && id > cnt)
            rc = counter_write(m, txn, &k, id);
        if (rc != MF_OK)
            return rc;
    }
    return MF_OK;
}

int mf__meta_task_put(mf_meta *m, const mf__task_record *t)
{
    if (!t)
        return mf__error_set(MF_EINVAL, "task put: NULL argument");
    return mf__meta_task_put_many(m, &t, 1);
}

static int task_put_many_fn(mf_meta *m, MDB_txn *txn, void *vctx)
{
    task_many_ctx *c = vctx;
    for (size_t i = 0; i < c->n; i++) {
        task_ctx one = { c->t[i], c->recs[i] };
        int rc = task_put_fn(m, txn, &one);
        if (rc != MF_OK)
            return rc;
    }
    return MF_OK;
}

static int task_check(mf_meta *m, const mf__task_record *t)
{
    if (!t || !t->flow || !t->run_id || !t->step || !t->task_id)
        return mf__error_set(MF_EINVAL, "task put: NULL argument");
    int rc = check_run_names(t->flow, t->run_id);
    /* Steps are checked as ids, not step names: the index also records
     * Metaflow's internal steps such as "_parameters". */
    if (rc == MF_OK)
        rc = mf__check_id_max("step", t->step, 255); /* as long as a step name may be */
    if (rc == MF_OK)
        rc = mf__check_id("task id", t->task_id);
    if (rc != MF_OK)
        return rc;
    keybuf k;
    task_prefix(&k, t->flow, t->run_id, t->step, t->task_id);
    k_be32(&k, t->attempt);
    if (!k_fits(m, &k))
        return key_too_long(m, "flow, run, step and task");
    /* The step's task-order key (flow\0run\0step\0 + be64) is the longer
     * one when the task id is short. */
    keybuf ok;
    k_init(&ok);
    k_name(&ok, t->flow);
    k_name(&ok, t->run_id);
    k_name(&ok, t->step);
    k_be64(&ok, 0);
    if (!k_fits(m, &ok))
        return key_too_long(m, "flow, run and step");
    return MF_OK;
}

int mf__meta_task_put_many(mf_meta *m, const mf__task_record *const *t, size_t n)
{
    if (!m || (!t && n))
        return mf__error_set(MF_EINVAL, "task put: NULL argument");
    if (n == 0)
        return MF_OK;
    int rc = check_writable(m, "recording tasks");
    for (size_t i = 0; rc == MF_OK && i < n; i++)
        rc = task_check(m, t[i]);
    if (rc != MF_OK)
        return rc;
    mf_buf *recs = calloc(n, sizeof *recs);
    if (!recs)
        return mf__error_oom();
    for (size_t i = 0; rc == MF_OK && i < n; i++)
        rc = mf__task_record_encode(t[i], &recs[i]);
    if (rc == MF_OK) {
        task_many_ctx c = { t, n, recs };
        rc = meta_write(m, "recording tasks", task_put_many_fn, &c);
    }
    for (size_t i = 0; i < n; i++)
        mf_buf_dispose(&recs[i]);
    free(recs);
    return rc;
}

int mf__meta_task_get(mf_meta *m, const char *flow, const char *run_id, const char *step,
                      const char *task_id, int64_t attempt, mf__task_record *out)
{
    if (!m || !flow || !run_id || !step || !task_id || !out)
        return mf__error_set(MF_EINVAL, "task get: NULL argument");
    memset(out, 0, sizeof *out);
    keybuf p, k;
    task_prefix(&p, flow, run_id, step, task_id);
    k = p;
    k_be32(&k, attempt < 0 ? UINT32_MAX : (uint32_t)attempt);
    if (!k_fits(m, &k) || attempt > (int64_t)UINT32_MAX) {
        if (attempt < 0)
            return mf__error_set(MF_ENOTFOUND, "task '%s/%s/%s/%s' not found",
                                 flow, run_id, step, task_id);
        return mf__error_set(MF_ENOTFOUND, "attempt %" PRId64 " of task '%s/%s/%s/%s' not found",
                             attempt, flow, run_id, step, task_id);
    }

    MDB_txn *txn;
    int rc = read_begin(m, "reading a task", &txn);
    if (rc != MF_OK)
        return rc;
    MDB_val key = k_val(&k), val;
    int mrc;
    if (attempt >= 0) {
        mrc = mdb_get(txn, m->db_tasks, &key, &val);
    } else {
        /* The latest attempt is the last key under the task's prefix. */
        MDB_cursor *cur;
        mrc = mdb_cursor_open(txn, m->db_tasks, &cur);
        if (mrc == 0) {
            mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
            if (mrc == 0 && !(key.mv_size == k.n && memcmp(key.mv_data, k.b, k.n) == 0))
                mrc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
            else if (mrc == MDB_NOTFOUND)
                mrc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
            if (mrc == 0 && !(has_prefix(&key, &p) && key.mv_size == p.n + 4))
                mrc = MDB_NOTFOUND;
            mdb_cursor_close(cur);
        }
    }
    if (mrc == MDB_NOTFOUND) {
        if (attempt < 0)
            rc = mf__error_set(MF_ENOTFOUND, "task '%s/%s/%s/%s' not found",
                               flow, run_id, step, task_id);
        else
            rc = mf__error_set(MF_ENOTFOUND, "attempt %" PRId64 " of task '%s/%s/%s/%s' not found",
                               attempt, flow, run_id, step, task_id);
    } else if (mrc) {
        rc = lmdb_error(m, mrc, "reading a task");
    } else {
        char what[1024];
        uint32_t a = be32_get((unsigned char *)key.mv_data + p.n);
        snprintf(what, sizeof what, "%s/%s/%s/%s/%u", flow, run_id, step, task_id, (unsigned)a);
        rc = mf__task_record_decode(out, val.mv_data, val.mv_size, what);
        if (rc != MF_OK)
            mf__error_wrap("metadata index '%s'", m->dir);
    }
    read_end(m, txn);
    return rc;
}

typedef struct step_ent {
    uint32_t seq;
    const char *name;
    size_t len;
} step_ent;

static int step_cmp(const void *a, const void *b)
{
    const step_ent *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int mf__meta_step_list(mf_meta *m, const char *flow, const char *run_id, mf_strlist *out)
{
    if (!m || !flow || !run_id || !out)
        return mf__error_set(MF_EINVAL, "step list: NULL argument");
    keybuf p;
    k_init(&p);
    k_name(&p, flow);
    k_name(&p, run_id);
    if (!k_fits(m, &p))
        return MF_OK;

    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = read_cursor(m, m->db_steps, "listing steps", &txn, &cur);
    if (rc != MF_OK)
        return rc;
    step_ent *v = NULL;
    size_t n = 0, cap = 0;
    MDB_val key = k_val(&p), val;
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && has_prefix(&key, &p)) {
        if (val.mv_size != 4 || key.mv_size == p.n) {
            rc = mf__error_set(MF_ECORRUPT, "metadata index '%s': bad step entry of run '%s/%s'",
                               m->dir, flow, run_id);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            step_ent *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = mf__error_oom();
                break;
            }
            v = nv;
            cap = nc;
        }
        /* Pointers into the map stay valid until the transaction ends. */
        v[n].seq = be32_get(val.mv_data);
        v[n].name = (const char *)key.mv_data + p.n;
        v[n].len = key.mv_size - p.n;
        n++;
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    rc = read_cursor_close(m, cur, rc, mrc, "listing steps");
    if (rc == MF_OK && n) {
        qsort(v, n, sizeof *v, step_cmp);
        for (size_t i = 0; i < n && rc == MF_OK; i++)
            rc = mf__strlist_pushn(out, v[i].name, v[i].len);
    }
    free(v);
    read_end(m, txn);
    return rc;
}

int mf__meta_task_list(mf_meta *m, const char *flow, const char *run_id, const char *step,
                       mf_strlist *out)
{
    if (!m || !flow || !run_id || !step || !out)
        return mf__error_set(MF_EINVAL, "task list: NULL argument");
    keybuf p;
    k_init(&p);
    k_name(&p, flow);
    k_name(&p, run_id);
    k_name(&p, step);
    if (!k_fits(m, &p))
        return MF_OK;

    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = read_cursor(m, m->db_task_order, "listing tasks", &txn, &cur);
    if (rc != MF_OK)
        return rc;
    MDB_val key = k_val(&p), val;
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && has_prefix(&key, &p)) {
        if (key.mv_size != p.n + 8 || val.mv_size == 0) {
            rc = mf__error_set(MF_ECORRUPT, "metadata index '%s': bad task order entry of step '%s/%s/%s'",
                               m->dir, flow, run_id, step);
            break;
        }
        rc = mf__strlist_pushn(out, val.mv_data, val.mv_size);
        if (rc != MF_OK)
            break;
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    rc = read_cursor_close(m, cur, rc, mrc, "listing tasks");
    read_end(m, txn);
    return rc;
}

/* ------------------------------------------------------------ clear */

static int clear_fn(mf_meta *m, MDB_txn *txn, void *ctx)
{
    (void)ctx;
    MDB_dbi dbis[] = { m->db_flows, m->db_runs, m->db_runs_by_time, m->db_tasks,
                       m->db_task_order, m->db_steps, m->db_counters };
    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
        int rc = mdb_drop(txn, dbis[i], 0);
        if (rc)
            return wr_error(m, rc, "clearing");
    }
    return MF_OK;
}

int mf__meta_clear(mf_meta *m)
{
    if (!m)
        return mf__error_set(MF_EINVAL, "clear: NULL index");
    int rc = check_writable(m, "clearing");
    return rc == MF_OK ? meta_write(m, "clearing", clear_fn, NULL) : rc;
}
