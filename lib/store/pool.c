/*
 * A per-call worker pool: the jobs of one large put or get (hashing,
 * compressing, writing, reading chunks) run on a few threads. Threads are
 * started per call because calls that use them move megabytes; the ~50 us
 * of thread start is noise there, and no idle threads live in the host.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store_int.h"

#define POOL_MAX_THREADS 8

unsigned mf__pool_threads(size_t njobs, unsigned per_cpu)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = ncpu > 0 ? (size_t)ncpu * per_cpu : 2;
    if (n < 2)
        n = 2;
    if (n > POOL_MAX_THREADS)
        n = POOL_MAX_THREADS;
    if (n > njobs)
        n = njobs ? njobs : 1;
    return (unsigned)n;
}

size_t mf__pool_next(mf__pool *pool)
{
    if (atomic_load_explicit(&pool->failed, memory_order_relaxed))
        return SIZE_MAX;
    size_t i = atomic_fetch_add(&pool->next, 1);
    return i < pool->njobs ? i : SIZE_MAX;
}

typedef struct worker {
    pthread_t thread;
    mf__pool *pool;
    mf__pool_fn fn;
    void *ctx;
    unsigned index;
    int rc;
} worker;

static void record_failure(mf__pool *pool, int rc)
{
    pthread_mutex_lock(&pool->mutex);
    if (!pool->err) {
        /* Errors are per thread: carry the worker's message to the caller. */
        pool->err = rc;
        snprintf(pool->msg, sizeof pool->msg, "%s", mf_error_last());
    }
    pthread_mutex_unlock(&pool->mutex);
    atomic_store(&pool->failed, 1);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->rc = w->fn(w->pool, w->ctx, w->index);
    if (w->rc != MF_OK)
        record_failure(w->pool, w->rc);
    return NULL;
}

int mf__pool_run(size_t njobs, unsigned nthreads, mf__pool_fn fn, void *ctx)
{
    mf__pool pool;
    memset(&pool, 0, sizeof pool);
    atomic_init(&pool.next, 0);
    atomic_init(&pool.failed, 0);
    pool.njobs = njobs;
    pthread_mutex_init(&pool.mutex, NULL);

    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > POOL_MAX_THREADS)
        nthreads = POOL_MAX_THREADS;
    worker w[POOL_MAX_THREADS];
    unsigned started = 0;
    for (unsigned i = 1; i < nthreads; i++) {
        w[i] = (worker){ .pool = &pool, .fn = fn, .ctx = ctx, .index = i };
        /* If a thread cannot start, the others (at least the caller)
         * simply take more jobs. */
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
            break;
        started = i;
    }
    int rc = fn(&pool, ctx, 0);
    if (rc != MF_OK)
        record_failure(&pool, rc);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(w[i].thread, NULL);
    pthread_mutex_destroy(&pool.mutex);
    if (pool.err)
        return mf__error_set(pool.err, "%s", pool.msg);
    return MF_OK;
}
