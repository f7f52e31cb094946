/*
 * libmetaflow - flow graphs.
 *
 * A flow is a graph of named steps from `start` to `end`. Build one step by
 * step, or load it from a serialized spec (msgpack, see docs/flow-spec.md),
 * then validate it. A flow object is used by one thread at a time; a
 * validated flow that is no longer modified may be read from many threads.
 *
 * Every declaration here is @since 0.1 unless its comment says otherwise.
 */
#ifndef METAFLOW_FLOW_H
#define METAFLOW_FLOW_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_flow mf_flow;

/** How control leaves a step. */
typedef enum mf_transition {
    MF_TRANSITION_NONE = 0,    /**< not set yet (only `end` may keep it) */
    MF_TRANSITION_LINEAR = 1,  /**< one target */
    MF_TRANSITION_SPLIT = 2,   /**< static branch to several targets */
    MF_TRANSITION_FOREACH = 3, /**< one target, once per item of a list artifact */
    MF_TRANSITION_SWITCH = 4   /**< one of several targets, chosen at run time */
} mf_transition;

/** Flags for mf_flow_add_step(). */
#define MF_STEP_JOIN 0x1u /**< the step takes the tasks of its parents as inputs */

/**
 * Graph problems reported by mf_flow_validate() through
 * mf_flow_problem(). Values are pinned.
 */
typedef enum mf_graph_problem {
    MF_GRAPH_OK = 0,
    MF_GRAPH_NO_START = 1,        /**< no step named `start` */
    MF_GRAPH_NO_END = 2,          /**< no step named `end` */
    MF_GRAPH_BAD_NAME = 3,        /**< step name not [a-z0-9_]+ or starts with '_' */
    MF_GRAPH_RESERVED_NAME = 4,   /**< name, next, input, index, cmd */
    MF_GRAPH_DUPLICATE_STEP = 5,  /**< two steps with one name */
    MF_GRAPH_UNKNOWN_TARGET = 6,  /**< a transition names a step that does not exist */
    MF_GRAPH_NO_TRANSITION = 7,   /**< a step other than `end` has no transition */
    MF_GRAPH_END_TRANSITION = 8,  /**< `end` has a transition */
    MF_GRAPH_UNREACHABLE = 9,     /**< a step cannot be reached from `start` */
    MF_GRAPH_DEAD_END = 10,       /**< `end` cannot be reached from a step */
    MF_GRAPH_CYCLE = 11,          /**< a cycle not made by a switch to itself or an ancestor */
    MF_GRAPH_UNCLOSED_SPLIT = 12, /**< a split or foreach is never closed by a join */
    MF_GRAPH_JOIN_MISMATCH = 13,  /**< a join's inputs come from different splits or levels */
    MF_GRAPH_NOT_A_JOIN = 14,     /**< a step closes a split but is not marked as a join */
    MF_GRAPH_JOIN_NO_SPLIT = 15,  /**< a join that closes no split */
    MF_GRAPH_START_JOIN = 16,     /**< `start` is marked as a join */
    MF_GRAPH_BAD_FOREACH = 17,    /**< foreach without a variable, or not one target */
    MF_GRAPH_BAD_SWITCH = 18,     /**< switch without a condition, cases or targets */
    MF_GRAPH_BAD_SPLIT = 19,      /**< split with fewer than two or repeated targets */
    MF_GRAPH_SWITCH_IN_SPLIT = 20 /**< a switch branch leaves the split it belongs to */
    /* next: 21. Never reuse a value. */
} mf_graph_problem;

/**
 * Create an empty flow.
 *
 * @param[out] out  the new flow, owned by the caller (mf_flow_free()).
 * @param[in]  name the flow's name: [A-Za-z][A-Za-z0-9_]*, at most 255
 *                  bytes, not "data".
 * @return MF_OK, MF_EINVAL (bad name, naming it), MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_new(mf_flow **out, const char *name);

/** Free a flow; accepts NULL. Invalidates every string it returned. @since 0.1 */
MF_EXTERN(void) mf_flow_free(mf_flow *flow);

/**
 * Add a step. Steps keep their order of declaration.
 *
 * @param flags 0 or MF_STEP_JOIN.
 * @return MF_OK, MF_EINVAL (bad or reserved name), MF_EEXISTS (duplicate),
 *         MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_add_step(mf_flow *flow, const char *step, uint32_t flags);

/**
 * Set a linear (one target) or static split (two or more targets)
 * transition. Replaces any transition the step had.
 *
 * @return MF_OK, MF_ENOTFOUND (no such step), MF_EINVAL, MF_ENOMEM.
 * @note Targets are checked by mf_flow_validate(), not here, so steps can be
 *       declared in any order.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_set_next(mf_flow *flow, const char *step,
                                const char *const *targets, size_t ntargets);

/**
 * Set a foreach transition: `target` runs once per item of the list
 * artifact `foreach_var` of `step`.
 * @return MF_OK, MF_ENOTFOUND, MF_EINVAL, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_set_foreach(mf_flow *flow, const char *step,
                                   const char *target, const char *foreach_var);

/**
 * Set a switch transition: at run time the value of artifact
 * `condition_var` of `step` selects `targets[i]` where it equals
 * `cases[i]`. A target may be `step` itself or one of its ancestors
 * (a recursive switch).
 * @return MF_OK, MF_ENOTFOUND, MF_EINVAL, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_set_switch(mf_flow *flow, const char *step,
                                  const char *const *cases,
                                  const char *const *targets, size_t n,
                                  const char *condition_var);

/**
 * Attach a string attribute to a step (decorator settings such as
 * "retry.times" = "3"); a NULL value removes it. The core stores and
 * serializes attributes; the runtime interprets the ones it knows.
 * Attributes do not affect validation; adding steps or changing
 * transitions undoes it.
 * @return MF_OK, MF_ENOTFOUND, MF_EINVAL, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_set_step_attr(mf_flow *flow, const char *step,
                                     const char *key, const char *value);

/**
 * Validate the graph. On failure the thread's error message names the
 * steps at fault and mf_flow_problem() tells which rule failed.
 * @return MF_OK or MF_EGRAPH.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_validate(mf_flow *flow);

/** The problem found by the last mf_flow_validate() (MF_GRAPH_OK if none). @since 0.1 */
MF_EXTERN(int) mf_flow_problem(const mf_flow *flow);

/**
 * Serialize a flow to its msgpack spec (format 1, docs/flow-spec.md).
 * @return MF_OK, MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_save(const mf_flow *flow, mf_buf *out);

/**
 * Load a flow from a msgpack spec. The spec is bounds-checked before any
 * allocation; the flow is not validated (call mf_flow_validate()): bad,
 * reserved or duplicate step names and graph defects load, and are
 * reported by validation with their mf_graph_problem.
 * @return MF_OK, MF_ECORRUPT (malformed spec, saying where), MF_EVERSION
 *         (unknown spec format), MF_EINVAL (bad names), MF_ENOMEM.
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_load(mf_flow **out, const void *spec, size_t len);

/** The flow's name. Borrowed; valid until mf_flow_free(). @since 0.1 */
MF_EXTERN(const char *) mf_flow_name(const mf_flow *flow);

/** Number of steps. @since 0.1 */
MF_EXTERN(size_t) mf_flow_step_count(const mf_flow *flow);

/** Name of the i-th step in declaration order, NULL when out of range. Borrowed. @since 0.1 */
MF_EXTERN(const char *) mf_flow_step_name(const mf_flow *flow, size_t i);

/** The step's transition (mf_transition), or MF_ENOTFOUND. @since 0.1 */
MF_EXTERN(int) mf_flow_step_transition(const mf_flow *flow, const char *step);

/** 1 if the step is a join, 0 if not, MF_ENOTFOUND. @since 0.1 */
MF_EXTERN(int) mf_flow_step_is_join(const mf_flow *flow, const char *step);

/** Number of targets of the step's transition (0 for `end`); 0 if no such step. @since 0.1 */
MF_EXTERN(size_t) mf_flow_step_target_count(const mf_flow *flow, const char *step);

/** The i-th target, NULL when out of range. Borrowed. @since 0.1 */
MF_EXTERN(const char *) mf_flow_step_target(const mf_flow *flow, const char *step, size_t i);

/** For a switch, the case value of the i-th target; NULL otherwise. Borrowed. @since 0.1 */
MF_EXTERN(const char *) mf_flow_step_case(const mf_flow *flow, const char *step, size_t i);

/** Foreach variable or switch condition of the step; NULL otherwise. Borrowed. @since 0.1 */
MF_EXTERN(const char *) mf_flow_step_var(const mf_flow *flow, const char *step);

/** A step attribute, NULL when unset. Borrowed. @since 0.1 */
MF_EXTERN(const char *) mf_flow_step_attr(const mf_flow *flow, const char *step, const char *key);

/**
 * For a validated flow: the step whose split or foreach this join closes
 * (NULL for a non-join or an unvalidated flow). Borrowed.
 * @since 0.1
 */
MF_EXTERN(const char *) mf_flow_step_split_parent(const mf_flow *flow, const char *step);

/**
 * For a validated flow: the number of enclosing foreach levels of a step
 * (0 for `start`; the body of a foreach is 1; its join is 0 again), or
 * MF_ENOTFOUND, or MF_ESTATE when the flow is not validated (or was changed
 * since).
 * @since 0.1
 */
MF_EXTERN(int) mf_flow_step_foreach_depth(const mf_flow *flow, const char *step);

#ifdef __cplusplus
}
#endif

#endif /* METAFLOW_FLOW_H */
