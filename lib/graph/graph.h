/*
 * Internal: flow graph model (lib/graph). The public API is
 * include/metaflow/flow.h; this header exposes what the runtime needs
 * beyond it: step lookup by index, the resolved edges, parents, the split
 * nesting of every step and a topological order.
 *
 * Everything under "computed" is filled by mf_flow_validate() and is only
 * meaningful while mf__flow_validated() is true: any change to the flow
 * clears that flag, and the next validation rebuilds (and moves) the
 * arrays. Outside lib/graph, treat every field as read-only.
 */
#ifndef MF_GRAPH_H
#define MF_GRAPH_H

#include "core/core.h"

/* "No step" in index-valued fields. */
#define MF__NO_STEP SIZE_MAX

/*
 * One level of split nesting. Frames are shared: every step inside branch
 * `branch` of split `split` (and not inside a deeper split) points to the
 * same frame, so two steps are at the same place in the split structure
 * exactly when their frame pointers are equal.
 */
typedef struct mf__graph_frame {
    size_t split;         /* index of the split or foreach step */
    size_t branch;        /* index into that step's targets (0 for a foreach) */
    size_t depth;         /* frames from the top level down to this one, >= 1 */
    size_t foreach_depth; /* how many of those frames are foreach steps */
    const struct mf__graph_frame *up; /* enclosing frame; NULL at top level */
} mf__graph_frame;

typedef struct mf__step_attr {
    char *key;
    char *value;
} mf__step_attr;

typedef struct mf__step {
    /* ---- declared (builder API or spec) */
    char *name;
    uint32_t flags;          /* MF_STEP_JOIN */
    int transition;          /* mf_transition */
    size_t ntargets;
    char **targets;
    char **cases;            /* switch: ntargets case values, or NULL if the spec had none */
    char *var;               /* foreach variable or switch condition; may be NULL */
    size_t nattrs;
    mf__step_attr *attrs;    /* in order of first setting */

    /* ---- computed by mf_flow_validate() */
    const size_t *target_idx;  /* ntargets step indices, parallel to targets */
    const bool *target_back;   /* ntargets flags: edge loops back (recursive switch) */
    const size_t *parents;     /* forward predecessors, ascending, no repeats */
    size_t nparents;
    const size_t *loop_parents;/* switches that loop back to this step, ascending */
    size_t nloop_parents;
    /* Splits open at this step; for a join, those left open after it
     * closes its split. NULL at top level. */
    const mf__graph_frame *frame;
    size_t split_parent;       /* join: the split/foreach it closes */
    size_t matching_join;      /* split/foreach: the join that closes it */
    size_t ipdom;              /* first step every forward path from here must pass
                                * (where a switch's branches come together);
                                * MF__NO_STEP for `end` */
    size_t topo_pos;           /* position in mf_flow.topo */
} mf__step;

struct mf_flow {
    char *name;
    mf__step *steps;         /* declaration order */
    size_t nsteps, cap;
    size_t *index;           /* open-addressing name hash: slot -> step index + 1 */
    size_t index_cap;        /* power of two, or 0 */
    int problem;             /* mf_graph_problem of the last validation */
    bool validated;

    /* ---- computed by mf_flow_validate() */
    size_t start, end;       /* step indices */
    size_t *topo;            /* every step, each after its forward parents */
    size_t *edge_to;         /* backing arrays of the per-step pointers above */
    bool *edge_back;
    size_t *parent_buf;
    size_t *loop_parent_buf;
    mf__graph_frame *frames;
    size_t nframes;
};

/* True when the flow passed mf_flow_validate() and was not changed since. */
bool mf__flow_validated(const mf_flow *flow);

/* Index of the first step named `step`: MF_OK, or MF_ENOTFOUND with a
 * message naming the step and the flow. */
int mf__flow_find(const mf_flow *flow, const char *step, size_t *idx);

/* The i-th step in declaration order; NULL when out of range. */
const mf__step *mf__flow_step_at(const mf_flow *flow, size_t i);

/* Internal to lib/graph. */
void mf__flow_touch(mf_flow *flow);          /* a change: drop validation */
void mf__flow_clear_computed(mf_flow *flow); /* free what validation computed */
size_t mf__flow_lookup(const mf_flow *flow, const char *name); /* MF__NO_STEP if absent */
/* Append a step without checking its name (spec loading); takes `name`. */
int mf__flow_push_step(mf_flow *flow, char *name, uint32_t flags);
void mf__step_clear_transition(mf__step *step);
/* 1 and *dup set if some string appears twice in v (O(n log n)), 0 if
 * not, MF_ENOMEM. `v` is reordered. */
int mf__strv_repeat(const char **v, size_t n, const char **dup);

#endif /* MF_GRAPH_H */
