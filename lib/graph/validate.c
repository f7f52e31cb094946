/*
 * Flow graph validation. The rules and the order they are checked in are
 * documented in docs/flow-spec.md; every failure names the steps at fault.
 *
 * Outline: names and shapes first (cheap, local), then edges are resolved,
 * then reachability from `start`, then loops: a dominator tree tells which
 * edges go back to a step that every path to their source passes (the only
 * loops a recursive switch may make), and the graph without those edges
 * must be acyclic. Its topological order drives one pass that gives every
 * step its split nesting ("frame") and checks joins; post-dominators tell
 * where a switch's branches come together. Everything is linear or
 * near-linear in steps + edges (the dominator iteration converges in a few
 * rounds on flow-shaped graphs), and nothing recurses, so a long chain
 * cannot exhaust the stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

typedef struct vstate {
    mf_flow *flow;
    mf__step *st;
    size_t n;        /* steps */
    size_t ne;       /* edges */
    int problem;

    /* edges, in step order then target order */
    size_t *eoff;    /* n + 1: out edges of step i are eoff[i] .. eoff[i+1]-1 */
    size_t *efrom;
    size_t *eto;     /* becomes flow->edge_to */
    bool *eback;     /* becomes flow->edge_back */
    size_t *ioff;    /* n + 1: in edges of step i, as edge ids, ascending source */
    size_t *iedge;

    size_t *idom;    /* dominator tree (all edges, root start) */
    size_t *ipdom;   /* post-dominator tree (forward edges, root end) */
    size_t *dpre, *dpost;  /* dominator tree intervals */
    size_t *topo;    /* becomes flow->topo */
    size_t *tpos;
    size_t *fbase;   /* first frame of each split/foreach */
    mf__graph_frame *frames;
    size_t nframes;
    const mf__graph_frame **ctx; /* frame of each step */
    size_t *mark;    /* scratch */
    size_t *queue;   /* scratch */
} vstate;

#define NONE MF__NO_STEP

static bool is_join(const mf__step *s)
{
    return (s->flags & MF_STEP_JOIN) != 0;
}

static bool opens_split(const mf__step *s)
{
    return s->transition == MF_TRANSITION_SPLIT || s->transition == MF_TRANSITION_FOREACH;
}

static const char *kind(const mf__step *s)
{
    return s->transition == MF_TRANSITION_FOREACH ? "foreach" : "split";
}

/* Record the problem and set the thread's error: "flow 'F': <message>". */
static int fail(vstate *v, int problem, const char *fmt, ...) MF__PRINTF(3, 4);
static int fail(vstate *v, int problem, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->problem = problem;
    return mf__error_set(MF_EGRAPH, "flow '%s': %s", v->flow->name, msg);
}

#define NAME(i) (v->st[(i)].name)

static void *xcalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

/* ---- 1. names, start/end, transition shapes */

static int check_names(vstate *v)
{
    for (size_t i = 0; i < v->n; i++) {
        const char *name = NAME(i);
        if (mf__check_step_name(name) == MF_OK)
            continue;
        if (mf__step_name_reserved(name))
            return fail(v, MF_GRAPH_RESERVED_NAME,
                        "step '%s' has a reserved name (name, next, input, index "
                        "and cmd are reserved)", name);
        return fail(v, MF_GRAPH_BAD_NAME,
                    "step '%s' has an invalid name: use 1 to 255 characters of "
                    "[a-z0-9_], not starting with '_'", name);
    }
    for (size_t i = 0; i < v->n; i++) {
        size_t first = mf__flow_lookup(v->flow, NAME(i));
        if (first != i)
            return fail(v, MF_GRAPH_DUPLICATE_STEP,
                        "step '%s' is declared twice (steps #%zu and #%zu)",
                        NAME(i), first, i);
    }
    return MF_OK;
}

static int check_ends(vstate *v)
{
    size_t start = mf__flow_lookup(v->flow, "start");
    size_t end = mf__flow_lookup(v->flow, "end");
    if (start == NONE)
        return fail(v, MF_GRAPH_NO_START, "no step named 'start'");
    if (end == NONE)
        return fail(v, MF_GRAPH_NO_END, "no step named 'end'");
    if (is_join(&v->st[start]))
        return fail(v, MF_GRAPH_START_JOIN,
                    "step 'start' is marked as a join, but no step comes before it");
    v->flow->start = start;
    v->flow->end = end;
    return MF_OK;
}

/* Sorting a copy keeps the declared order intact. */
static int repeat(char *const *strv, size_t n, const char **dup)
{
    const char **copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return mf__error_oom();
    memcpy(copy, strv, n * sizeof *copy);
    int rc = mf__strv_repeat(copy, n, dup);
    free(copy);
    return rc;
}

static int check_shapes(vstate *v)
{
    for (size_t i = 0; i < v->n; i++) {
        const mf__step *s = &v->st[i];
        const char *dup = NULL;
        int rc;
        if (i == v->flow->end) {
            if (s->transition != MF_TRANSITION_NONE)
                return fail(v, MF_GRAPH_END_TRANSITION,
                            "step 'end' has a transition (to '%s'); the end step "
                            "must not have one", s->ntargets ? s->targets[0] : "");
            continue;
        }
        switch (s->transition) {
        case MF_TRANSITION_NONE:
            return fail(v, MF_GRAPH_NO_TRANSITION,
                        "step '%s' has no transition; only 'end' may have none", s->name);
        case MF_TRANSITION_LINEAR:
            if (s->ntargets != 1) /* the builder and the loader never allow it */
                return fail(v, MF_GRAPH_NO_TRANSITION,
                            "step '%s' has a linear transition without one target", s->name);
            break;
        case MF_TRANSITION_SPLIT:
            if (s->ntargets < 2)
                return fail(v, MF_GRAPH_BAD_SPLIT,
                            "split '%s' has %zu target(s); a split needs two or more",
                            s->name, s->ntargets);
            if ((rc = repeat(s->targets, s->ntargets, &dup)) == 1)
                return fail(v, MF_GRAPH_BAD_SPLIT,
                            "split '%s' names target '%s' twice", s->name, dup);
            if (rc)
                return rc;
            break;
        case MF_TRANSITION_FOREACH:
            if (s->ntargets != 1)
                return fail(v, MF_GRAPH_BAD_FOREACH,
                            "foreach '%s' has %zu targets; a foreach has exactly one",
                            s->name, s->ntargets);
            if (!s->var)
                return fail(v, MF_GRAPH_BAD_FOREACH,
                            "foreach '%s' has no foreach variable", s->name);
            if (mf__check_artifact_name(s->var))
                return fail(v, MF_GRAPH_BAD_FOREACH,
                            "foreach '%s': variable '%s' is not a valid artifact name",
                            s->name, s->var);
            break;
        case MF_TRANSITION_SWITCH:
            if (!s->var)
                return fail(v, MF_GRAPH_BAD_SWITCH,
                            "switch '%s' has no condition variable", s->name);
            if (mf__check_artifact_name(s->var))
                return fail(v, MF_GRAPH_BAD_SWITCH,
                            "switch '%s': condition '%s' is not a valid artifact name",
                            s->name, s->var);
            if (!s->cases)
                return fail(v, MF_GRAPH_BAD_SWITCH, "switch '%s' has no cases", s->name);
            if (s->ntargets < 2)
                return fail(v, MF_GRAPH_BAD_SWITCH,
                            "switch '%s' has %zu case(s); a switch needs two or more",
                            s->name, s->ntargets);
            if ((rc = repeat(s->cases, s->ntargets, &dup)) == 1)
                return fail(v, MF_GRAPH_BAD_SWITCH,
                            "switch '%s' has case '%s' twice", s->name, dup);
            if (rc)
                return rc;
            break;
        default:
            return fail(v, MF_GRAPH_NO_TRANSITION,
                        "step '%s' has an unknown transition type %d", s->name, s->transition);
        }
    }
    return MF_OK;
}

/* ---- 2. edges */

static int build_edges(vstate *v)
{
    size_t n = v->n, ne = 0;
    for (size_t i = 0; i < n; i++)
        ne += v->st[i].ntargets;
    v->ne = ne;
    v->eoff = xcalloc(n + 1, sizeof *v->eoff);
    v->efrom = xcalloc(ne, sizeof *v->efrom);
    v->eto = xcalloc(ne, sizeof *v->eto);
    v->eback = xcalloc(ne, sizeof *v->eback);
    v->ioff = xcalloc(n + 1, sizeof *v->ioff);
    v->iedge = xcalloc(ne, sizeof *v->iedge);
    if (!v->eoff || !v->efrom || !v->eto || !v->eback || !v->ioff || !v->iedge)
        return mf__error_oom();

    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        const mf__step *s = &v->st[i];
        v->eoff[i] = e;
        for (size_t k = 0; k < s->ntargets; k++, e++) {
            size_t t = mf__flow_lookup(v->flow, s->targets[k]);
            if (t == NONE)
                return fail(v, MF_GRAPH_UNKNOWN_TARGET,
                            "step '%s' goes to '%s', which is not a step of the flow",
                            s->name, s->targets[k]);
            v->efrom[e] = i;
            v->eto[e] = t;
        }
    }
    v->eoff[n] = e;

    /* In-edges by counting sort: scanning edges in order keeps each list
     * sorted by source step. */
    for (e = 0; e < ne; e++)
        v->ioff[v->eto[e] + 1]++;
    for (size_t i = 0; i < n; i++)
        v->ioff[i + 1] += v->ioff[i];
    size_t *fill = v->mark;
    memcpy(fill, v->ioff, n * sizeof *fill);
    for (e = 0; e < ne; e++)
        v->iedge[fill[v->eto[e]]++] = e;

    /* Shapes that need resolved targets. */
    for (size_t i = 0; i < n; i++) {
        const mf__step *s = &v->st[i];
        for (e = v->eoff[i]; e < v->eoff[i + 1]; e++) {
            const mf__step *t = &v->st[v->eto[e]];
            if (s->transition == MF_TRANSITION_FOREACH && is_join(t))
                return fail(v, MF_GRAPH_BAD_FOREACH,
                            "foreach '%s' goes straight to join '%s'; add at least one "
                            "step between them", s->name, t->name);
            if (s->transition == MF_TRANSITION_SWITCH && is_join(t))
                return fail(v, MF_GRAPH_BAD_SWITCH,
                            "switch '%s' goes straight to join '%s' (case '%s'); add an "
                            "unconditional step before the join",
                            s->name, t->name, s->cases[e - v->eoff[i]]);
            if (s->transition == MF_TRANSITION_SWITCH && v->eto[e] == v->flow->start)
                return fail(v, MF_GRAPH_BAD_SWITCH,
                            "switch '%s' goes back to 'start' (case '%s'); 'start' runs "
                            "once, loop back to a later step", s->name,
                            s->cases[e - v->eoff[i]]);
        }
    }
    return MF_OK;
}

/* ---- 3. reachability */

static int check_reachable(vstate *v)
{
    size_t n = v->n, head = 0, tail = 0;
    memset(v->mark, 0, n * sizeof *v->mark);
    v->mark[v->flow->start] = 1;
    v->queue[tail++] = v->flow->start;
    while (head < tail) {
        size_t u = v->queue[head++];
        for (size_t e = v->eoff[u]; e < v->eoff[u + 1]; e++)
            if (!v->mark[v->eto[e]]) {
                v->mark[v->eto[e]] = 1;
                v->queue[tail++] = v->eto[e];
            }
    }
    for (size_t i = 0; i < n; i++)
        if (!v->mark[i])
            return fail(v, MF_GRAPH_UNREACHABLE,
                        "step '%s' cannot be reached from 'start'", NAME(i));
    return MF_OK;
}

/* Steps that reach `end` along forward edges: every step must, or a loop
 * would have no way out. */
static int check_reaches_end(vstate *v)
{
    size_t n = v->n, head = 0, tail = 0;
    memset(v->mark, 0, n * sizeof *v->mark);
    v->mark[v->flow->end] = 1;
    v->queue[tail++] = v->flow->end;
    while (head < tail) {
        size_t u = v->queue[head++];
        for (size_t k = v->ioff[u]; k < v->ioff[u + 1]; k++) {
            size_t e = v->iedge[k];
            if (!v->eback[e] && !v->mark[v->efrom[e]]) {
                v->mark[v->efrom[e]] = 1;
                v->queue[tail++] = v->efrom[e];
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!v->mark[i])
            return fail(v, MF_GRAPH_DEAD_END,
                        "step '%s' never reaches 'end'%s", NAME(i),
                        v->st[i].transition == MF_TRANSITION_SWITCH
                            ? " (every case loops back)" : "");
    return MF_OK;
}

/* ---- 4. dominators
 *
 * Cooper, Harvey & Kennedy's iterative algorithm over a reverse postorder.
 * `reverse` walks edges backwards (post-dominators, root `end`); forward
 * walks use every edge when `all` is set, else only non-back edges. */

typedef struct walk {
    const vstate *v;
    bool reverse, all;
} walk;

static size_t w_deg(const walk *w, size_t u)
{
    const vstate *v = w->v;
    return w->reverse ? v->ioff[u + 1] - v->ioff[u] : v->eoff[u + 1] - v->eoff[u];
}

/* k-th neighbour of u in walk direction, or NONE when that edge is skipped */
static size_t w_succ(const walk *w, size_t u, size_t k)
{
    const vstate *v = w->v;
    size_t e = w->reverse ? v->iedge[v->ioff[u] + k] : v->eoff[u] + k;
    if (!w->all && v->eback[e])
        return NONE;
    return w->reverse ? v->efrom[e] : v->eto[e];
}

static size_t w_pdeg(const walk *w, size_t u)
{
    walk r = {w->v, !w->reverse, w->all};
    return w_deg(&r, u);
}

static size_t w_pred(const walk *w, size_t u, size_t k)
{
    walk r = {w->v, !w->reverse, w->all};
    return w_succ(&r, u, k);
}

/* Tree parent array -> preorder/postorder numbers, for O(1) ancestor
 * tests: a is an ancestor of b iff pre[a] <= pre[b] && post[b] <= post[a]. */
static int tree_intervals(size_t n, const size_t *parent, size_t root,
                          size_t *pre, size_t *post)
{
    size_t *coff = xcalloc(n + 1, sizeof *coff);
    size_t *child = xcalloc(n, sizeof *child);
    size_t *stack = xcalloc(n, sizeof *stack);
    size_t *next = xcalloc(n, sizeof *next);
    if (!coff || !child || !stack || !next) {
        free(coff); free(child); free(stack); free(next);
        return mf__error_oom();
    }
    for (size_t i = 0; i < n; i++)
        if (i != root && parent[i] != NONE)
            coff[parent[i] + 1]++;
    for (size_t i = 0; i < n; i++)
        coff[i + 1] += coff[i];
    memcpy(next, coff, n * sizeof *next);
    for (size_t i = 0; i < n; i++)
        if (i != root && parent[i] != NONE)
            child[next[parent[i]]++] = i;
    memcpy(next, coff, n * sizeof *next);
    size_t sp = 0, cpre = 0, cpost = 0;
    stack[sp++] = root;
    pre[root] = cpre++;
    while (sp) {
        size_t u = stack[sp - 1];
        if (next[u] < coff[u + 1]) {
            size_t c = child[next[u]++];
            pre[c] = cpre++;
            stack[sp++] = c;
        } else {
            post[u] = cpost++;
            sp--;
        }
    }
    free(coff); free(child); free(stack); free(next);
    return MF_OK;
}

static int dominators(vstate *v, const walk *w, size_t root, size_t *idom)
{
    size_t n = v->n;
    size_t *po = xcalloc(n, sizeof *po);      /* postorder number */
    size_t *order = xcalloc(n, sizeof *order);/* nodes by postorder */
    size_t *stack = xcalloc(n, sizeof *stack);
    size_t *next = xcalloc(n, sizeof *next);
    bool *seen = xcalloc(n, sizeof *seen);
    if (!po || !order || !stack || !next || !seen) {
        free(po); free(order); free(stack); free(next); free(seen);
        return mf__error_oom();
    }
    size_t sp = 0, cnt = 0;
    stack[sp++] = root;
    seen[root] = true;
    while (sp) {
        size_t u = stack[sp - 1];
        if (next[u] < w_deg(w, u)) {
            size_t s = w_succ(w, u, next[u]++);
            if (s != NONE && !seen[s]) {
                seen[s] = true;
                stack[sp++] = s;
            }
        } else {
            po[u] = cnt;
            order[cnt++] = u;
            sp--;
        }
    }
    for (size_t i = 0; i < n; i++)
        idom[i] = NONE;
    idom[root] = root;
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t r = cnt - 1; r-- > 0;) { /* reverse postorder, root excluded */
            size_t b = order[r], nd = NONE;
            for (size_t k = 0; k < w_pdeg(w, b); k++) {
                size_t p = w_pred(w, b, k);
                if (p == NONE || !seen[p] || idom[p] == NONE)
                    continue;
                if (nd == NONE) {
                    nd = p;
                    continue;
                }
                size_t a = p, c = nd;
                while (a != c) {
                    while (po[a] < po[c])
                        a = idom[a];
                    while (po[c] < po[a])
                        c = idom[c];
                }
                nd = a;
            }
            if (idom[b] != nd) {
                idom[b] = nd;
                changed = true;
            }
        }
    }
    free(po); free(order); free(stack); free(next); free(seen);
    return MF_OK;
}

/* ---- 5. loops */

static int check_loops(vstate *v)
{
    size_t n = v->n;
    walk all = {v, false, true};
    int rc = dominators(v, &all, v->flow->start, v->idom);
    if (!rc)
        rc = tree_intervals(n, v->idom, v->flow->start, v->dpre, v->dpost);
    if (rc)
        return rc;

    /* An edge to a step that dominates its source closes a loop. Only a
     * switch may do that (a recursive switch: to itself or an ancestor). */
    for (size_t e = 0; e < v->ne; e++) {
        size_t u = v->efrom[e], t = v->eto[e];
        if (!(v->dpre[t] <= v->dpre[u] && v->dpost[u] <= v->dpost[t]))
            continue;
        if (v->st[u].transition != MF_TRANSITION_SWITCH) {
            if (u == t)
                return fail(v, MF_GRAPH_CYCLE,
                            "step '%s' goes to itself; only a switch may loop", NAME(u));
            return fail(v, MF_GRAPH_CYCLE,
                        "step '%s' goes back to '%s', making a loop; only a switch may "
                        "go back to itself or to a step before it", NAME(u), NAME(t));
        }
        v->eback[e] = true;
    }

    /* Without those edges the graph must be acyclic (Kahn). */
    size_t *indeg = v->mark, head = 0, tail = 0;
    memset(indeg, 0, n * sizeof *indeg);
    for (size_t e = 0; e < v->ne; e++)
        if (!v->eback[e])
            indeg[v->eto[e]]++;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            v->topo[tail++] = i;
    while (head < tail) {
        size_t u = v->topo[head++];
        for (size_t e = v->eoff[u]; e < v->eoff[u + 1]; e++)
            if (!v->eback[e] && --indeg[v->eto[e]] == 0)
                v->topo[tail++] = v->eto[e];
    }
    if (tail == n) {
        for (size_t i = 0; i < n; i++)
            v->tpos[v->topo[i]] = i;
        return MF_OK;
    }

    /* A loop with more than one way in (no step of it dominates the
     * others). Every step left has a predecessor left: walk predecessors
     * until one repeats, then name the loop in forward order. */
    size_t u = NONE;
    for (size_t i = 0; i < n && u == NONE; i++)
        if (indeg[i])
            u = i;
    size_t *when = v->queue, *path = v->tpos, len = 0;
    for (size_t i = 0; i < n; i++)
        when[i] = NONE;
    while (when[u] == NONE) {
        when[u] = len;
        path[len++] = u;
        size_t p = NONE;
        for (size_t k = v->ioff[u]; k < v->ioff[u + 1] && p == NONE; k++) {
            size_t e = v->iedge[k];
            if (!v->eback[e] && indeg[v->efrom[e]])
                p = v->efrom[e];
        }
        u = p;
    }
    /* path[j + 1] -> path[j] are edges; the loop is path[when[u]] ->
     * path[len - 1] -> ... -> path[when[u] + 1] -> path[when[u]]. */
    char names[512];
    size_t off = 0;
    names[0] = '\0';
    for (size_t j = len; j-- > when[u] + 1 && off < sizeof names;)
        off += (size_t)snprintf(names + off, sizeof names - off, " -> '%s'", NAME(path[j]));
    return fail(v, MF_GRAPH_CYCLE,
                "steps '%s'%s -> '%s' form a loop that is not closed by a switch going "
                "back to a step every path into the loop passes", NAME(u), names, NAME(u));
}

/* ---- 6. split structure */

/* Is split `x` open in frame chain `f`? */
static bool frame_has(const mf__graph_frame *f, size_t x)
{
    for (; f; f = f->up)
        if (f->split == x)
            return true;
    return false;
}

/*
 * A structure error at step `at` involves split `x`. If a switch inside
 * that split, upstream of `at`, has branches that only come together after
 * `at` (or at `at`, a plain step), the switch is the fault: one of its
 * branches leaves the split other than through its join. Reports it and
 * returns MF_EGRAPH, or returns MF_OK when no switch is to blame.
 */
static int blame_switch(vstate *v, size_t at, size_t x)
{
    size_t n = v->n, head = 0, tail = 0;
    size_t *up = v->mark;
    memset(up, 0, n * sizeof *up);
    up[at] = 1;
    v->queue[tail++] = at;
    while (head < tail) {
        size_t u = v->queue[head++];
        for (size_t k = v->ioff[u]; k < v->ioff[u + 1]; k++) {
            size_t e = v->iedge[k];
            if (!v->eback[e] && !up[v->efrom[e]]) {
                up[v->efrom[e]] = 1;
                v->queue[tail++] = v->efrom[e];
            }
        }
    }
    for (size_t s = 0; s < n; s++) {
        if (s == at || !up[s] || v->st[s].transition != MF_TRANSITION_SWITCH)
            continue;
        if (v->tpos[s] > v->tpos[at] || !frame_has(v->ctx[s], x))
            continue;
        size_t p = v->ipdom[s];
        if (p == NONE)
            continue;
        if (v->tpos[p] > v->tpos[at] || (p == at && !is_join(&v->st[at])))
            return fail(v, MF_GRAPH_SWITCH_IN_SPLIT,
                        "switch '%s' inside %s '%s': its cases part at '%s' and do "
                        "not meet again before '%s'; inside a split, whichever case "
                        "runs must lead to the split's join", NAME(s), kind(&v->st[x]),
                        NAME(x), NAME(s), NAME(at));
    }
    return MF_OK;
}

/* "in split 'x'" / "at top level", for messages */
static const char *where(const vstate *v, const mf__graph_frame *f, char *buf, size_t size)
{
    if (!f)
        return "at top level";
    snprintf(buf, size, "in %s '%s'", kind(&v->st[f->split]), v->st[f->split].name);
    return buf;
}

/* The frame a step's edge e carries into its target. */
static const mf__graph_frame *edge_frame(vstate *v, size_t e)
{
    size_t u = v->efrom[e];
    if (opens_split(&v->st[u]))
        return &v->frames[v->fbase[u] + (e - v->eoff[u])];
    return v->ctx[u];
}

/* Two different frames reach plain step `at` (from parents pa and pb). */
static int merge_conflict(vstate *v, size_t at, const mf__graph_frame *a, size_t pa,
                          const mf__graph_frame *b, size_t pb)
{
    /* Find the outermost level where they differ. */
    const mf__graph_frame *fa = a, *fb = b, *da = NULL, *db = NULL;
    size_t la = a ? a->depth : 0, lb = b ? b->depth : 0;
    while (la > lb) { da = fa; fa = fa->up; la--; }
    while (lb > la) { db = fb; fb = fb->up; lb--; }
    while (fa != fb) {
        da = fa; fa = fa->up;
        db = fb; fb = fb->up;
    }
    /* da/db: the frames just inside the common part (NULL: none deeper) */
    int rc;
    if (da && db && da->split == db->split) {
        size_t x = da->split;
        if (v->ipdom[x] != at && (rc = blame_switch(v, at, x)))
            return rc;
        return fail(v, MF_GRAPH_NOT_A_JOIN,
                    "step '%s' brings together branches '%s' and '%s' of %s '%s' "
                    "but is not marked as a join", NAME(at),
                    v->st[x].targets[da->branch], v->st[x].targets[db->branch],
                    kind(&v->st[x]), NAME(x));
    }
    if (da && (rc = blame_switch(v, at, da->split)))
        return rc;
    if (db && (rc = blame_switch(v, at, db->split)))
        return rc;
    const mf__graph_frame *open = da ? da : db;
    size_t inside = da ? pa : pb, other = da ? pb : pa;
    return fail(v, MF_GRAPH_UNCLOSED_SPLIT,
                "%s '%s' is not closed by a join before '%s' (reached from '%s' inside "
                "it and from '%s' outside it)", kind(&v->st[open->split]),
                NAME(open->split), NAME(at), NAME(inside), NAME(other));
}

static int visit_plain(vstate *v, size_t i)
{
    const mf__graph_frame *f = NULL;
    size_t fp = NONE, fe = NONE;
    for (size_t k = v->ioff[i]; k < v->ioff[i + 1]; k++) {
        size_t e = v->iedge[k];
        if (v->eback[e])
            continue;
        const mf__graph_frame *g = edge_frame(v, e);
        if (fe == NONE) {
            f = g;
            fe = e;
            fp = v->efrom[e];
        } else if (g != f) {
            return merge_conflict(v, i, f, fp, g, v->efrom[e]);
        }
    }
    v->ctx[i] = f;
    if (i == v->flow->end && f) {
        /* every path into end left the split open alike: no switch chose
         * a way out, the join is simply missing */
        return fail(v, MF_GRAPH_UNCLOSED_SPLIT,
                    "%s '%s' is never closed by a join: its branch '%s' reaches 'end'",
                    kind(&v->st[f->split]), NAME(f->split),
                    v->st[f->split].targets[f->branch]);
    }
    return MF_OK;
}

static int visit_join(vstate *v, size_t i)
{
    const mf__graph_frame *top = NULL;
    size_t topp = NONE;
    bool all_top_level = true;
    int rc;

    for (size_t k = v->ioff[i]; k < v->ioff[i + 1]; k++) {
        size_t e = v->iedge[k];
        if (!v->eback[e] && edge_frame(v, e))
            all_top_level = false;
    }
    if (all_top_level)
        return fail(v, MF_GRAPH_JOIN_NO_SPLIT,
                    "join '%s' closes no split: no input comes from a split or foreach",
                    NAME(i));

    /* Inputs must sit in branches of one split, at one level. */
    for (size_t k = v->ioff[i]; k < v->ioff[i + 1]; k++) {
        size_t e = v->iedge[k];
        if (v->eback[e])
            continue;
        const mf__graph_frame *g = edge_frame(v, e);
        if (topp == NONE) {
            top = g;
            topp = v->efrom[e];
            continue;
        }
        if (g && top && g->split == top->split && g->up == top->up)
            continue;
        if (g && (rc = blame_switch(v, i, g->split)))
            return rc;
        if (top && (rc = blame_switch(v, i, top->split)))
            return rc;
        char wa[300], wb[300];
        return fail(v, MF_GRAPH_JOIN_MISMATCH,
                    "join '%s' has inputs from different splits or levels: '%s' (%s) "
                    "and '%s' (%s)", NAME(i), NAME(topp), where(v, top, wa, sizeof wa),
                    NAME(v->efrom[e]), where(v, g, wb, sizeof wb));
    }

    size_t x = top->split;
    const mf__step *xs = &v->st[x];
    /* Each branch of the split must bring one input. */
    size_t *seen = v->mark;
    for (size_t b = 0; b < xs->ntargets; b++)
        seen[b] = 0;
    for (size_t k = v->ioff[i]; k < v->ioff[i + 1]; k++) {
        size_t e = v->iedge[k];
        if (!v->eback[e])
            seen[edge_frame(v, e)->branch] = 1;
    }
    for (size_t b = 0; b < xs->ntargets; b++)
        if (!seen[b])
            return fail(v, MF_GRAPH_JOIN_MISMATCH,
                        "join '%s' closes split '%s' but gets no input from its "
                        "branch '%s'", NAME(i), NAME(x), xs->targets[b]);
    if (xs->matching_join != NONE) {
        if ((rc = blame_switch(v, i, x)))
            return rc;
        return fail(v, MF_GRAPH_JOIN_MISMATCH,
                    "%s '%s' is closed by two joins, '%s' and '%s'", kind(xs), NAME(x),
                    NAME(xs->matching_join), NAME(i));
    }
    v->st[x].matching_join = i;
    v->st[i].split_parent = x;
    v->ctx[i] = top->up;
    return MF_OK;
}

static int check_structure(vstate *v)
{
    size_t n = v->n;
    walk fwd_rev = {v, true, false};
    int rc = dominators(v, &fwd_rev, v->flow->end, v->ipdom);
    if (rc)
        return rc;
    v->ipdom[v->flow->end] = NONE;

    /* One frame per branch of each split or foreach. */
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        v->fbase[i] = nf;
        if (opens_split(&v->st[i]))
            nf += v->st[i].ntargets;
    }
    v->frames = xcalloc(nf, sizeof *v->frames);
    if (!v->frames)
        return mf__error_oom();
    v->nframes = nf;

    for (size_t t = 0; t < n; t++) {
        size_t i = v->topo[t];
        mf__step *s = &v->st[i];
        if (i == v->flow->start)
            v->ctx[i] = NULL;
        else if (is_join(s))
            rc = visit_join(v, i);
        else
            rc = visit_plain(v, i);
        if (rc)
            return rc;
        if (opens_split(s)) {
            const mf__graph_frame *up = v->ctx[i];
            for (size_t k = 0; k < s->ntargets; k++) {
                mf__graph_frame *f = &v->frames[v->fbase[i] + k];
                f->split = i;
                f->branch = k;
                f->up = up;
                f->depth = (up ? up->depth : 0) + 1;
                f->foreach_depth = (up ? up->foreach_depth : 0) +
                                   (s->transition == MF_TRANSITION_FOREACH);
            }
        }
    }

    /* A switch's branches must come together inside its split (or at the
     * split's join), and a recursive switch may only go back to a step at
     * its own level. */
    for (size_t i = 0; i < n; i++) {
        const mf__step *s = &v->st[i];
        if (s->transition != MF_TRANSITION_SWITCH)
            continue;
        const mf__graph_frame *c = v->ctx[i];
        for (size_t e = v->eoff[i]; e < v->eoff[i + 1]; e++) {
            size_t t = v->eto[e];
            if (v->eback[e] && v->ctx[t] != c)
                return fail(v, MF_GRAPH_SWITCH_IN_SPLIT,
                            "switch '%s' goes back to '%s', which is in another split "
                            "or level (only steps of its own branch qualify)",
                            s->name, NAME(t));
        }
        size_t p = v->ipdom[i];
        bool ok = p != NONE &&
                  (is_join(&v->st[p])
                       ? (c && v->st[p].split_parent == c->split && v->ctx[p] == c->up)
                       : v->ctx[p] == c);
        if (!ok)
            return fail(v, MF_GRAPH_SWITCH_IN_SPLIT,
                        "switch '%s' has branches that only come together at '%s', "
                        "outside %s '%s'", s->name, p != NONE ? NAME(p) : "(nowhere)",
                        c ? kind(&v->st[c->split]) : "its level",
                        c ? NAME(c->split) : s->name);
    }

    for (size_t i = 0; i < n; i++)
        if (opens_split(&v->st[i]) && v->st[i].matching_join == NONE)
            return fail(v, MF_GRAPH_UNCLOSED_SPLIT,
                        "%s '%s' is never closed by a join", kind(&v->st[i]), NAME(i));
    return MF_OK;
}

/* ---- 7. publish what the runtime reads */

static int publish(vstate *v)
{
    mf_flow *flow = v->flow;
    size_t n = v->n, ne = v->ne;
    size_t *par = xcalloc(ne, sizeof *par);
    size_t *lpar = xcalloc(ne, sizeof *lpar);
    if (!par || !lpar) {
        free(par);
        free(lpar);
        return mf__error_oom();
    }
    size_t np = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
        mf__step *s = &v->st[i];
        s->target_idx = v->eto + v->eoff[i];
        s->target_back = v->eback + v->eoff[i];
        s->parents = par + np;
        s->loop_parents = lpar + nl;
        s->nparents = s->nloop_parents = 0;
        /* in-edges are sorted by source: skip repeats (a switch with two
         * cases to one step) by comparing with the last one kept */
        for (size_t k = v->ioff[i]; k < v->ioff[i + 1]; k++) {
            size_t e = v->iedge[k], u = v->efrom[e];
            if (v->eback[e]) {
                if (!s->nloop_parents || lpar[nl - 1] != u) {
                    lpar[nl++] = u;
                    s->nloop_parents++;
                }
            } else if (!s->nparents || par[np - 1] != u) {
                par[np++] = u;
                s->nparents++;
            }
        }
        s->frame = v->ctx[i];
        s->ipdom = v->ipdom[i];
        s->topo_pos = v->tpos[i];
    }
    flow->edge_to = v->eto;
    flow->edge_back = v->eback;
    flow->parent_buf = par;
    flow->loop_parent_buf = lpar;
    flow->frames = v->frames;
    flow->nframes = v->nframes;
    flow->topo = v->topo;
    v->eto = NULL;
    v->eback = NULL;
    v->frames = NULL;
    v->topo = NULL;
    return MF_OK;
}

static int run(vstate *v)
{
    int rc;
    if ((rc = check_names(v)) || (rc = check_ends(v)) || (rc = check_shapes(v)))
        return rc;
    size_t n = v->n;
    v->mark = xcalloc(n + 1, sizeof *v->mark);
    v->queue = xcalloc(n + 1, sizeof *v->queue);
    v->idom = xcalloc(n, sizeof *v->idom);
    v->ipdom = xcalloc(n, sizeof *v->ipdom);
    v->dpre = xcalloc(n, sizeof *v->dpre);
    v->dpost = xcalloc(n, sizeof *v->dpost);
    v->topo = xcalloc(n, sizeof *v->topo);
    v->tpos = xcalloc(n, sizeof *v->tpos);
    v->fbase = xcalloc(n, sizeof *v->fbase);
    v->ctx = xcalloc(n, sizeof *v->ctx);
    if (!v->mark || !v->queue || !v->idom || !v->ipdom || !v->dpre || !v->dpost ||
        !v->topo || !v->tpos || !v->fbase || !v->ctx)
        return mf__error_oom();
    /* the split-branch scratch in visit_join indexes mark by branch */
    size_t maxt = 0;
    for (size_t i = 0; i < n; i++)
        if (v->st[i].ntargets > maxt)
            maxt = v->st[i].ntargets;
    if (maxt > n + 1) {
        size_t *m = realloc(v->mark, maxt * sizeof *m);
        if (!m)
            return mf__error_oom();
        v->mark = m;
    }
    if ((rc = build_edges(v)) || (rc = check_reachable(v)) || (rc = check_loops(v)) ||
        (rc = check_reaches_end(v)) || (rc = check_structure(v)))
        return rc;
    return publish(v);
}

MF_EXTERN(int) mf_flow_validate(mf_flow *flow)
{
    if (!flow)
        return mf__error_set(MF_EINVAL, "mf_flow_validate: flow is NULL");
    mf__flow_clear_computed(flow);
    vstate v;
    memset(&v, 0, sizeof v);
    v.flow = flow;
    v.st = flow->steps;
    v.n = flow->nsteps;
    v.problem = MF_GRAPH_OK;
    int rc = run(&v);
    free(v.eoff); free(v.efrom); free(v.eto); free(v.eback);
    free(v.ioff); free(v.iedge); free(v.idom); free(v.ipdom);
    free(v.dpre); free(v.dpost); free(v.topo); free(v.tpos);
    free(v.fbase); free(v.frames); free(v.ctx); free(v.mark); free(v.queue);
    if (rc) {
        /* Leave no half-computed fields behind (matching_join etc.). */
        mf__flow_clear_computed(flow);
        flow->problem = rc == MF_EGRAPH ? v.problem : MF_GRAPH_OK;
        return rc;
    }
    flow->problem = MF_GRAPH_OK;
    flow->validated = true;
    return MF_OK;
}
