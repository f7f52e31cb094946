/*
 * The committer: a thread that makes batches of finished attempts durable
 * (one datastore sync) and indexes them (one LMDB transaction), while the
 * driver thread goes on launching tasks that were already ready. A batch
 * comes back to the driver only when it is durable, and only then are its
 * successors scheduled; so while the disk syncs one batch, the next one
 * grows, and the number of syncs adapts to the speed of the disk.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "datastore/datastore.h"
#include "rt.h"

struct rt_committer {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rt_batch *in_head, *in_tail;
    rt_batch *out_head, *out_tail;
    bool stop;
    int evfd;
    mf_engine *engine;
};

static int commit_batch(mf_engine *e, rt_batch *b)
{
    int rc = mf__datastore_sync(e->ds);
    if (rc)
        return mf__error_wrap("making finished tasks durable");
    const mf__task_record **recs = calloc(b->n, sizeof *recs);
    mf__task_record *rv = calloc(b->n, sizeof *rv);
    if (!recs || !rv)
        rc = mf__error_oom();
    for (size_t i = 0; !rc && i < b->n; i++) {
        rc = mf__api_task_record(&b->v[i].result->man, &rv[i]);
        recs[i] = &rv[i];
    }
    if (!rc)
        rc = mf__meta_task_put_many(e->meta, recs, b->n);
    for (size_t i = 0; rv && i < b->n; i++)
        free(rv[i].artifact_names);
    free(recs);
    free(rv);
    return rc;
}

static void *committer_main(void *arg)
{
    rt_committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->in_head && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->in_head)
            break;
        rt_batch *b = c->in_head;
        c->in_head = b->next;
        if (!c->in_head)
            c->in_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        b->rc = commit_batch(c->engine, b);
        if (b->rc)
            b->err = strdup(mf_error_last()); /* errors are per thread */
        pthread_mutex_lock(&c->mu);
        b->next = NULL;
        if (c->out_tail)
            c->out_tail->next = b;
        else
            c->out_head = b;
        c->out_tail = b;
        uint64_t one = 1;
        ssize_t w = write(c->evfd, &one, sizeof one);
        (void)w; /* an eventfd write fails only on counter overflow */
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int mf__rt_committer_start(mf__rt *rt)
{
    rt_committer *c = calloc(1, sizeof *c);
    if (!c)
        return mf__error_oom();
    c->engine = rt->engine;
    c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->evfd < 0) {
        int rc = mf__error_errno(errno, "starting the runtime", "eventfd");
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int e = pthread_create(&c->thread, NULL, committer_main, c);
    if (e) {
        close(c->evfd);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
        return mf__error_errno(e, "starting the runtime", "pthread_create");
    }
    c->started = true;
    rt->committer = c;
    return MF_OK;
}

int mf__rt_committer_fd(const mf__rt *rt)
{
    return rt->committer ? rt->committer->evfd : -1;
}

int mf__rt_committer_push(mf__rt *rt, rt_done *v, size_t n)
{
    rt_batch *b = calloc(1, sizeof *b);
    if (!b)
        return mf__error_oom();
    b->v = v;
    b->n = n;
    rt_committer *c = rt->committer;
    pthread_mutex_lock(&c->mu);
    if (c->in_tail)
        c->in_tail->next = b;
    else
        c->in_head = b;
    c->in_tail = b;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    rt->batches_inflight++;
    return MF_OK;
}

rt_batch *mf__rt_committer_take(mf__rt *rt)
{
    rt_committer *c = rt->committer;
    uint64_t v;
    ssize_t r = read(c->evfd, &v, sizeof v);
    (void)r; /* EAGAIN when nothing was signalled */
    pthread_mutex_lock(&c->mu);
    rt_batch *b = c->out_head;
    c->out_head = c->out_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    for (rt_batch *x = b; x; x = x->next)
        rt->batches_inflight--;
    return b;
}

void mf__rt_batch_free(rt_batch *b)
{
    while (b) {
        rt_batch *next = b->next;
        for (size_t i = 0; i < b->n; i++) {
            mf_task_free(b->v[i].result);
            free(b->v[i].message);
        }
        free(b->v);
        free(b->err);
        free(b);
        b = next;
    }
}

void mf__rt_committer_stop(mf__rt *rt)
{
    rt_committer *c = rt->committer;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started)
        pthread_join(c->thread, NULL);
    mf__rt_batch_free(c->in_head);
    mf__rt_batch_free(c->out_head);
    close(c->evfd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    rt->committer = NULL;
}
