/*
 * Private to lib/meta: the index handle shared by index.c and lock.c.
 */
#ifndef MF_META_INT_H
#define MF_META_INT_H

#include <pthread.h>
#include <sys/types.h>

#include <lmdb.h>

#include "meta/meta.h"

struct mf_meta {
    MDB_env *env;
    char *dir;
    bool readonly;
    /* The process that opened the index: LMDB handles (and our POSIX
     * locks) are not valid in a fork() child. */
    pid_t pid;
    unsigned fork_gen;  /* mf__meta_fork_gen() at open */
    /* Every transaction holds this shared; growing the map takes it
     * exclusive, because mdb_env_set_mapsize() needs no live transaction
     * in this process. */
    pthread_rwlock_t rw;
    /* Current map size; only changes under `rw` held exclusive, so a
     * writer that hit MDB_MAP_FULL can tell whether someone else already
     * grew the map. */
    size_t map_size;
    size_t max_key;
    MDB_dbi db_meta, db_flows, db_runs, db_runs_by_time, db_tasks,
            db_task_order, db_steps, db_counters;
};

/* Counts fork()s of this process image (a pthread_atfork child handler),
 * so the fork check costs no getpid() system call per query. */
unsigned mf__meta_fork_gen(void);

/* MF_ESTATE when called in a process other than the one that opened
 * `meta` (a fork() child). */
int mf__meta_check_pid(const mf_meta *meta, const char *op);

/* mf__meta_run_lock(), also telling whether this call took the lock
 * (false: this process already held it). */
int mf__meta_run_lock_acquire(mf_meta *meta, const char *flow, const char *run_id,
                              bool *acquired);

#endif /* MF_META_INT_H */
