/*
 * Fuzz target: flow specs (lib/graph/spec.c and validate.c).
 *
 * Whatever loads must validate without crashing, save, load again and
 * save to the same bytes, with the same validation outcome; any mismatch
 * aborts so the fuzzer records the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mf_flow *flow = NULL;
    int rc = mf_flow_load(&flow, data, size);
    if (rc != MF_OK) {
        must(flow == NULL);
        must(rc == MF_ECORRUPT || rc == MF_EVERSION || rc == MF_EINVAL || rc == MF_ENOMEM);
        return 0;
    }
    int v1 = mf_flow_validate(flow);
    must(v1 == MF_OK || v1 == MF_EGRAPH || v1 == MF_ENOMEM);
    int p1 = mf_flow_problem(flow);
    must((v1 == MF_EGRAPH) == (p1 != MF_GRAPH_OK));

    if (v1 == MF_OK) {
        /* the computed structure is consistent */
        for (size_t i = 0; i < flow->nsteps; i++) {
            const mf__step *s = &flow->steps[i];
            const char *name = mf_flow_step_name(flow, i);
            must(mf_flow_step_foreach_depth(flow, name) >= 0);
            for (size_t k = 0; k < s->nparents; k++)
                must(flow->steps[s->parents[k]].topo_pos < s->topo_pos);
            if (s->flags & MF_STEP_JOIN)
                must(mf_flow_step_split_parent(flow, name) != NULL);
        }
    }

    mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
    must(mf_flow_save(flow, &a) == MF_OK);
    mf_flow *again = NULL;
    must(mf_flow_load(&again, a.ptr, a.size) == MF_OK);
    int v2 = mf_flow_validate(again);
    must(v1 == v2 || v1 == MF_ENOMEM || v2 == MF_ENOMEM);
    if (v1 == v2)
        must(mf_flow_problem(again) == p1);
    must(mf_flow_save(again, &b) == MF_OK);
    must(a.size == b.size && memcmp(a.ptr, b.ptr, a.size) == 0);

    mf_buf_dispose(&a);
    mf_buf_dispose(&b);
    mf_flow_free(again);
    mf_flow_free(flow);
    return 0;
}
