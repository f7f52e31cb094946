/* mfctl: maintenance commands: verify, gc, reindex. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mfctl.h"

int mfctl_cmd_verify(mfctl *ctl)
{
    mf_strlist *bad = NULL;
    int rc = mf_store_verify(ctl->engine, &bad);
    if (rc == MF_OK) {
        mf_strlist_free(bad);
        return MFCTL_EXIT_OK;
    }
    if (rc != MF_ECORRUPT)
        return mfctl_fail_api("cannot verify the store");
    /* The message counts the damaged blobs and names the first. */
    mfctl_fail_api(NULL);
    for (size_t i = 0; i < mf_strlist_count(bad); i++)
        printf("%s\n", mf_strlist_get(bad, i));
    mf_strlist_free(bad);
    return MFCTL_EXIT_FAIL;
}

int mfctl_cmd_gc(mfctl *ctl)
{
    mf_gc_options o = MF_GC_OPTIONS_INIT;
    mf_gc_stats st;
    memset(&st, 0, sizeof st);
    st.version = MF_GC_STATS_VERSION;
    o.grace_seconds = ctl->grace;
    o.flags = ctl->dry_run ? MF_GC_DRY_RUN : 0;
    if (mf_gc(ctl->engine, &o, &st) != MF_OK)
        return mfctl_fail_api("garbage collection stopped");
    printf("manifests\t%" PRIu64 "\n"
           "blobs\t%" PRIu64 "\n"
           "live\t%" PRIu64 "\n"
           "young\t%" PRIu64 "\n"
           "swept\t%" PRIu64 "\n"
           "bytes_swept\t%" PRIu64 "\n",
           st.manifests, st.blobs, st.live, st.young, st.swept, st.bytes_swept);
    return MFCTL_EXIT_OK;
}

int mfctl_cmd_reindex(mfctl *ctl)
{
    if (mf_index_rebuild(ctl->engine) != MF_OK)
        return mfctl_fail_api(NULL);
    return MFCTL_EXIT_OK;
}
