/*
 * Unit tests of lib/graph: the builder, every validation rule (a flow that
 * breaks it and one that does not), the computed structure, the msgpack
 * spec and hostile input.
 *
 * Flows are written in a small notation, one token per step:
 *   name            no transition        name*...   a join
 *   name>a          linear               name>a,b   split
 *   name~var>a      foreach over var     name?var>c1:a,c2:b   switch
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <msgpack.h>

#include "graph/graph.h"

/* ---- helpers */

static mf_flow *build(const char *spec)
{
    mf_flow *flow = NULL;
    assert_int_equal(mf_flow_new(&flow, "TestFlow"), MF_OK);
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);

    /* pass 1: declare steps */
    char *save = NULL;
    char copy[4096];
    memcpy(copy, buf, sizeof copy);
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char name[256];
        size_t n = strcspn(tok, "*>~?");
        memcpy(name, tok, n);
        name[n] = '\0';
        uint32_t flags = tok[n] == '*' ? MF_STEP_JOIN : 0;
        int rc = mf_flow_add_step(flow, name, flags);
        if (rc)
            fail_msg("add_step %s: %s", name, mf_error_last());
    }
    /* pass 2: transitions */
    save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char name[256], var[256] = "";
        size_t n = strcspn(tok, "*>~?");
        memcpy(name, tok, n);
        name[n] = '\0';
        char *p = tok + n;
        if (*p == '*')
            p++;
        char mode = 0;
        if (*p == '~' || *p == '?') {
            mode = *p++;
            size_t m = strcspn(p, ">");
            memcpy(var, p, m);
            var[m] = '\0';
            p += m;
        }
        if (*p != '>')
            continue;
        p++;
        const char *targets[64], *cases[64];
        char items[64][256];
        size_t nt = 0;
        char *save2 = NULL;
        for (char *it = strtok_r(p, ",", &save2); it; it = strtok_r(NULL, ",", &save2)) {
            snprintf(items[nt], sizeof items[nt], "%s", it);
            char *colon = strchr(items[nt], ':');
            if (mode == '?' && colon) {
                *colon = '\0';
                cases[nt] = items[nt];
                targets[nt] = colon + 1;
            } else {
                targets[nt] = items[nt];
            }
            nt++;
        }
        int rc;
        if (mode == '~')
            rc = mf_flow_set_foreach(flow, name, targets[0], var);
        else if (mode == '?')
            rc = mf_flow_set_switch(flow, name, cases, targets, nt, var);
        else
            rc = mf_flow_set_next(flow, name, targets, nt);
        if (rc)
            fail_msg("transition of %s: %s", name, mf_error_last());
    }
    return flow;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay);
}

/* Validate; expect `problem` and every following string (NULL-ended) in
 * the error message. */
static void expect_problem_flow(mf_flow *flow, int problem, ...)
{
    int rc = mf_flow_validate(flow);
    if (rc != MF_EGRAPH)
        fail_msg("expected MF_EGRAPH (problem %d), got %d: %s", problem, rc, mf_error_last());
    if (mf_flow_problem(flow) != problem)
        fail_msg("expected problem %d, got %d: %s", problem, mf_flow_problem(flow),
                 mf_error_last());
    assert_int_equal(mf_error_last_code(), MF_EGRAPH);
    const char *msg = mf_error_last();
    if (getenv("MF_TEST_VERBOSE"))
        printf("problem %2d: %s\n", problem, msg);
    assert_contains(msg, "flow 'TestFlow'");
    va_list ap;
    va_start(ap, problem);
    for (const char *s; (s = va_arg(ap, const char *));)
        assert_contains(msg, s);
    va_end(ap);
    /* nothing computed survives a failed validation */
    assert_null(mf_flow_step_split_parent(flow, "end"));
    int d = mf_flow_step_foreach_depth(flow, "start");
    assert_true(d == MF_ESTATE || d == MF_ENOTFOUND);
}

#define EXPECT_PROBLEM(spec, problem, ...) do { \
        mf_flow *f_ = build(spec); \
        expect_problem_flow(f_, problem, __VA_ARGS__, NULL); \
        mf_flow_free(f_); \
    } while (0)

static void expect_valid_flow(mf_flow *flow)
{
    int rc = mf_flow_validate(flow);
    if (rc != MF_OK)
        fail_msg("expected a valid flow, got %d (problem %d): %s", rc,
                 mf_flow_problem(flow), mf_error_last());
    assert_int_equal(mf_flow_problem(flow), MF_GRAPH_OK);
}

#define EXPECT_VALID(spec) do { \
        mf_flow *f_ = build(spec); \
        expect_valid_flow(f_); \
        mf_flow_free(f_); \
    } while (0)

static void save(const mf_flow *flow, mf_buf *out)
{
    assert_int_equal(mf_flow_save(flow, out), MF_OK);
    assert_non_null(out->ptr);
}

/* Save, replace every occurrence of `from` by `to` (same length, so the
 * msgpack lengths stay right) and load: names the builder refuses. */
static mf_flow *load_renamed(const mf_flow *flow, const char *from, const char *to)
{
    mf_buf b = MF_BUF_INIT;
    save(flow, &b);
    size_t n = strlen(from);
    assert_int_equal(n, strlen(to));
    for (size_t i = 0; i + n <= b.size; i++)
        if (memcmp(b.ptr + i, from, n) == 0)
            memcpy(b.ptr + i, to, n);
    mf_flow *out = NULL;
    int rc = mf_flow_load(&out, b.ptr, b.size);
    if (rc)
        fail_msg("load: %s", mf_error_last());
    mf_buf_dispose(&b);
    return out;
}

/* ---- rules: names */

static void test_bad_name(void **state)
{
    (void)state;
    mf_flow *f = build("start>xad xad>end end");
    expect_valid_flow(f);
    mf_flow *g = load_renamed(f, "xad", "Bad");
    expect_problem_flow(g, MF_GRAPH_BAD_NAME, "'Bad'", NULL);
    mf_flow_free(g);
    g = load_renamed(f, "xad", "_ad");
    expect_problem_flow(g, MF_GRAPH_BAD_NAME, "'_ad'", NULL);
    mf_flow_free(g);
    g = load_renamed(f, "xad", "a-d");
    expect_problem_flow(g, MF_GRAPH_BAD_NAME, "'a-d'", NULL);
    mf_flow_free(g);
    g = load_renamed(f, "xad", "a_9");
    expect_valid_flow(g);
    mf_flow_free(g);
    mf_flow_free(f);

    /* the builder refuses them outright */
    assert_int_equal(mf_flow_new(&f, "F"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "Bad", 0), MF_EINVAL);
    assert_contains(mf_error_last(), "Bad");
    assert_int_equal(mf_flow_add_step(f, "_x", 0), MF_EINVAL);
    assert_int_equal(mf_flow_add_step(f, "", 0), MF_EINVAL);
    assert_int_equal(mf_flow_add_step(f, NULL, 0), MF_EINVAL);
    assert_int_equal(mf_flow_step_count(f), 0);
    mf_flow_free(f);
}

static void test_reserved_name(void **state)
{
    (void)state;
    static const char *const reserved[] = {"name", "next", "input", "index", "cmd"};
    static const char *const stand_in[] = {"nnme", "nxxt", "inpxt", "indxx", "cmx"};
    for (size_t i = 0; i < 5; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "start>%s %s>end end", stand_in[i], stand_in[i]);
        mf_flow *f = build(spec);
        expect_valid_flow(f);
        mf_flow *g = load_renamed(f, stand_in[i], reserved[i]);
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", reserved[i]);
        expect_problem_flow(g, MF_GRAPH_RESERVED_NAME, quoted, "reserved", NULL);
        mf_flow_free(g);
        mf_flow_free(f);

        assert_int_equal(mf_flow_new(&f, "F"), MF_OK);
        assert_int_equal(mf_flow_add_step(f, reserved[i], 0), MF_EINVAL);
        assert_contains(mf_error_last(), "reserved");
        mf_flow_free(f);
    }
    /* a name merely containing a reserved word is fine */
    EXPECT_VALID("start>next_step next_step>end end");
}

static void test_duplicate_step(void **state)
{
    (void)state;
    mf_flow *f = build("start>dupa dupa>dupb dupb>end end");
    expect_valid_flow(f);
    assert_int_equal(mf_flow_add_step(f, "dupa", 0), MF_EEXISTS);
    assert_contains(mf_error_last(), "dupa");
    mf_flow *g = load_renamed(f, "dupb", "dupa");
    assert_int_equal(mf_flow_step_count(g), 4);
    expect_problem_flow(g, MF_GRAPH_DUPLICATE_STEP, "'dupa'", "twice", NULL);
    mf_flow_free(g);
    mf_flow_free(f);
}

/* ---- rules: start, end, transitions */

static void test_start_end(void **state)
{
    (void)state;
    EXPECT_PROBLEM("begin>end end", MF_GRAPH_NO_START, "'start'");
    EXPECT_PROBLEM("start>finish finish", MF_GRAPH_NO_END, "'end'");
    EXPECT_PROBLEM("", MF_GRAPH_NO_START, "'start'");
    EXPECT_PROBLEM("start*>end end", MF_GRAPH_START_JOIN, "'start'", "join");
    EXPECT_PROBLEM("start>end end>start", MF_GRAPH_END_TRANSITION, "'end'");
    EXPECT_PROBLEM("start>a a end", MF_GRAPH_NO_TRANSITION, "'a'");
    EXPECT_PROBLEM("start end", MF_GRAPH_NO_TRANSITION, "'start'");
    EXPECT_VALID("start>end end");
    /* declaration order does not matter */
    EXPECT_VALID("end a>end start>a");
}

static void test_unknown_target(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start>a,nope a>end end", MF_GRAPH_UNKNOWN_TARGET, "'start'", "'nope'");
    EXPECT_PROBLEM("start?c>x:a,y:ghost a>end end", MF_GRAPH_UNKNOWN_TARGET, "'ghost'");
    EXPECT_VALID("start>a a>end end");
}

static void test_unreachable(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start>end orphan>end end", MF_GRAPH_UNREACHABLE, "'orphan'");
    /* a loop of orphans is unreachable before it is a loop */
    EXPECT_PROBLEM("start>end p>q q>p end", MF_GRAPH_UNREACHABLE, "'p'");
    EXPECT_VALID("start>a,b a>j b>j j*>end end");
}

static void test_dead_end(void **state)
{
    (void)state;
    /* s only ever loops back to itself */
    EXPECT_PROBLEM("start?c>x:s,y:end s?d>p:s,q:s end", MF_GRAPH_DEAD_END, "'s'");
    EXPECT_VALID("start?c>x:s,y:end s?d>p:s,q:end end");
}

static void test_cycle(void **state)
{
    (void)state;
    /* a split going back to an ancestor */
    EXPECT_PROBLEM("start>a a>b b>a,end end", MF_GRAPH_CYCLE, "'b'", "'a'");
    /* a linear step to itself */
    EXPECT_PROBLEM("start>a,b a>a b>j j*>end end", MF_GRAPH_CYCLE, "'a'", "itself");
    /* a linear step back to start */
    EXPECT_PROBLEM("start>a a?c>x:b,y:end b>start end", MF_GRAPH_CYCLE, "'b'", "'start'");
    /* a loop with two ways in, closed by a switch: a and b each come
     * straight from start, so neither is an ancestor of the other */
    EXPECT_PROBLEM("start?c>x:a,y:b a>b b?d>p:a,q:end end", MF_GRAPH_CYCLE,
                   "'a' -> 'b' -> 'a'");
    EXPECT_VALID("start?c>x:a,y:b a>b b?d>p:end,q:end end");
}

static void test_recursive_switch(void **state)
{
    (void)state;
    /* to itself, as in Metaflow 2.19 */
    mf_flow *f = build("start>s s?cond>again:s,done:end end");
    expect_valid_flow(f);
    size_t si;
    assert_int_equal(mf__flow_find(f, "s", &si), MF_OK);
    const mf__step *s = mf__flow_step_at(f, si);
    assert_true(s->target_back[0]);
    assert_false(s->target_back[1]);
    assert_int_equal(s->nloop_parents, 1);
    assert_int_equal(s->loop_parents[0], si);
    assert_int_equal(s->nparents, 1);
    assert_string_equal(f->steps[s->parents[0]].name, "start");
    assert_string_equal(mf_flow_step_case(f, "s", 0), "again");
    assert_string_equal(mf_flow_step_var(f, "s"), "cond");
    mf_flow_free(f);

    /* to an ancestor, with a split inside the loop */
    f = build("start>a a>b,c b>j c>j j*>s s?cond>loop:a,exit:end end");
    expect_valid_flow(f);
    assert_int_equal(mf__flow_find(f, "a", &si), MF_OK);
    assert_int_equal(f->steps[si].nloop_parents, 1);
    assert_string_equal(mf_flow_step_split_parent(f, "j"), "a");
    mf_flow_free(f);

    /* inside a foreach body, looping within the body */
    f = build("start~items>body body?c>again:body,done:after after>j j*>end end");
    expect_valid_flow(f);
    assert_int_equal(mf_flow_step_foreach_depth(f, "body"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "after"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "j"), 0);
    mf_flow_free(f);

    /* a loop around a whole foreach */
    EXPECT_VALID("start>t t~xs>body body>j j*>s s?c>again:t,done:end end");
}

static void test_switch_converges_without_join(void **state)
{
    (void)state;
    /* only one branch of a switch runs: z is not a join */
    mf_flow *f = build("start?c>a:x,b:y x>z y>z z>end end");
    expect_valid_flow(f);
    assert_int_equal(mf_flow_step_is_join(f, "z"), 0);
    assert_null(mf_flow_step_split_parent(f, "z"));
    size_t zi;
    assert_int_equal(mf__flow_find(f, "z", &zi), MF_OK);
    assert_int_equal(f->steps[zi].nparents, 2);
    size_t si;
    assert_int_equal(mf__flow_find(f, "start", &si), MF_OK);
    assert_int_equal(f->steps[si].ipdom, zi);
    mf_flow_free(f);
    /* ... and marking it as one is an error */
    EXPECT_PROBLEM("start?c>a:x,b:y x>z y>z z*>end end", MF_GRAPH_JOIN_NO_SPLIT, "'z'");
    /* switches in sequence and nested, branches meeting at different places */
    EXPECT_VALID("start?c>a:s2,b:m s2?d>a:m,b:n m>n n>end end");
}

/* ---- rules: shapes of split, foreach, switch */

static void test_bad_split(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start>a,a a>end end", MF_GRAPH_BAD_SPLIT, "'start'", "'a' twice");
    /* a one-target split only comes from a spec */
    mf_flow *f;
    {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "format", 6);
        msgpack_pack_int(&pk, 1);
        msgpack_pack_str_with_body(&pk, "name", 4);
        msgpack_pack_str_with_body(&pk, "TestFlow", 8);
        msgpack_pack_str_with_body(&pk, "steps", 5);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "name", 4);
        msgpack_pack_str_with_body(&pk, "start", 5);
        msgpack_pack_str_with_body(&pk, "transition", 10);
        msgpack_pack_str_with_body(&pk, "split", 5);
        msgpack_pack_str_with_body(&pk, "targets", 7);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_str_with_body(&pk, "a", 1);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "name", 4);
        msgpack_pack_str_with_body(&pk, "a", 1);
        msgpack_pack_str_with_body(&pk, "transition", 10);
        msgpack_pack_str_with_body(&pk, "linear", 6);
        msgpack_pack_str_with_body(&pk, "targets", 7);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_str_with_body(&pk, "end", 3);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "name", 4);
        msgpack_pack_str_with_body(&pk, "end", 3);
        msgpack_pack_str_with_body(&pk, "transition", 10);
        msgpack_pack_str_with_body(&pk, "none", 4);
        assert_int_equal(mf_flow_load(&f, sb.data, sb.size), MF_OK);
        msgpack_sbuffer_destroy(&sb);
        expect_problem_flow(f, MF_GRAPH_BAD_SPLIT, "'start'", "two or more", NULL);
        mf_flow_free(f);
    }
}

/* A one-step-plus-end spec with a hand-written step map for `start`:
 * `kv` is msgpack packed by the caller through the callback. */
typedef void (*pack_fn)(msgpack_packer *pk);

static void spec_with_start(msgpack_sbuffer *sb, size_t start_keys, pack_fn start_body,
                            const char *extra_step)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "format", 6);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "name", 4);
    msgpack_pack_str_with_body(&pk, "TestFlow", 8);
    msgpack_pack_str_with_body(&pk, "steps", 5);
    msgpack_pack_array(&pk, extra_step ? 3 : 2);
    msgpack_pack_map(&pk, start_keys + 1);
    msgpack_pack_str_with_body(&pk, "name", 4);
    msgpack_pack_str_with_body(&pk, "start", 5);
    start_body(&pk);
    if (extra_step) {
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "name", 4);
        msgpack_pack_str_with_body(&pk, extra_step, strlen(extra_step));
        msgpack_pack_str_with_body(&pk, "transition", 10);
        msgpack_pack_str_with_body(&pk, "linear", 6);
        msgpack_pack_str_with_body(&pk, "targets", 7);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_str_with_body(&pk, "end", 3);
    }
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "name", 4);
    msgpack_pack_str_with_body(&pk, "end", 3);
    msgpack_pack_str_with_body(&pk, "transition", 10);
    msgpack_pack_str_with_body(&pk, "none", 4);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void body_foreach_novar(msgpack_packer *pk)
{
    pk_str(pk, "transition"); pk_str(pk, "foreach");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 1); pk_str(pk, "a");
}

static void body_foreach_two(msgpack_packer *pk)
{
    pk_str(pk, "transition"); pk_str(pk, "foreach");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "a"); pk_str(pk, "end");
    pk_str(pk, "var"); pk_str(pk, "xs");
}

static void body_foreach_badvar(msgpack_packer *pk)
{
    pk_str(pk, "transition"); pk_str(pk, "foreach");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 1); pk_str(pk, "a");
    pk_str(pk, "var"); pk_str(pk, "9lives");
}

static void body_switch_nocases(msgpack_packer *pk)
{
    pk_str(pk, "transition"); pk_str(pk, "switch");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "a"); pk_str(pk, "end");
    pk_str(pk, "var"); pk_str(pk, "c");
}

static void body_switch_novar(msgpack_packer *pk)
{
    pk_str(pk, "transition"); pk_str(pk, "switch");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "a"); pk_str(pk, "end");
    pk_str(pk, "cases"); msgpack_pack_array(pk, 2); pk_str(pk, "x"); pk_str(pk, "y");
}

static mf_flow *load_sb(msgpack_sbuffer *sb)
{
    mf_flow *f = NULL;
    int rc = mf_flow_load(&f, sb->data, sb->size);
    if (rc)
        fail_msg("load: %s", mf_error_last());
    msgpack_sbuffer_destroy(sb);
    return f;
}

static void test_bad_foreach(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    mf_flow *f;
    spec_with_start(&sb, 2, body_foreach_novar, "a");
    f = load_sb(&sb);
    expect_problem_flow(f, MF_GRAPH_BAD_FOREACH, "'start'", "variable", NULL);
    mf_flow_free(f);
    spec_with_start(&sb, 3, body_foreach_two, "a");
    f = load_sb(&sb);
    expect_problem_flow(f, MF_GRAPH_BAD_FOREACH, "'start'", "exactly one", NULL);
    mf_flow_free(f);
    spec_with_start(&sb, 3, body_foreach_badvar, "a");
    f = load_sb(&sb);
    expect_problem_flow(f, MF_GRAPH_BAD_FOREACH, "'9lives'", NULL);
    mf_flow_free(f);
    /* straight into its join */
    EXPECT_PROBLEM("start~xs>j j*>end end", MF_GRAPH_BAD_FOREACH, "'start'", "'j'");
    /* the builder refuses a bad variable */
    f = build("start>end end");
    assert_int_equal(mf_flow_set_foreach(f, "start", "end", "9lives"), MF_EINVAL);
    assert_contains(mf_error_last(), "9lives");
    assert_int_equal(mf_flow_set_foreach(f, "start", "end", NULL), MF_EINVAL);
    assert_int_equal(mf_flow_set_foreach(f, "start", NULL, "xs"), MF_EINVAL);
    assert_int_equal(mf_flow_set_foreach(f, "nope", "end", "xs"), MF_ENOTFOUND);
    assert_contains(mf_error_last(), "'nope'");
    /* the failed calls left the transition alone */
    assert_int_equal(mf_flow_step_transition(f, "start"), MF_TRANSITION_LINEAR);
    mf_flow_free(f);
    EXPECT_VALID("start~xs>a a>j j*>end end");
}

static void test_bad_switch(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start?c>only:end end", MF_GRAPH_BAD_SWITCH, "'start'", "two or more");
    EXPECT_PROBLEM("start?c>x:a,x:end a>end end", MF_GRAPH_BAD_SWITCH, "case 'x' twice");
    /* straight into a join (ambiguous in Metaflow too) */
    EXPECT_PROBLEM("start>a,b a?c>x:j,y:p p>j b>j j*>end end", MF_GRAPH_BAD_SWITCH,
                   "'a'", "'j'");
    /* back to start */
    EXPECT_PROBLEM("start>a a?c>x:start,y:end end", MF_GRAPH_BAD_SWITCH, "'a'", "'start'");
    msgpack_sbuffer sb;
    mf_flow *f;
    spec_with_start(&sb, 3, body_switch_nocases, "a");
    f = load_sb(&sb);
    expect_problem_flow(f, MF_GRAPH_BAD_SWITCH, "'start'", "no cases", NULL);
    mf_flow_free(f);
    spec_with_start(&sb, 3, body_switch_novar, "a");
    f = load_sb(&sb);
    expect_problem_flow(f, MF_GRAPH_BAD_SWITCH, "'start'", "condition", NULL);
    mf_flow_free(f);
    /* builder argument checks */
    f = build("start>end end");
    const char *cases[] = {"a", "b"}, *targets[] = {"end", "end"}, *nul[] = {"a", NULL};
    assert_int_equal(mf_flow_set_switch(f, "start", cases, targets, 2, "bad var"), MF_EINVAL);
    assert_int_equal(mf_flow_set_switch(f, "start", cases, targets, 0, "c"), MF_EINVAL);
    assert_int_equal(mf_flow_set_switch(f, "start", nul, targets, 2, "c"), MF_EINVAL);
    assert_int_equal(mf_flow_set_switch(f, "start", cases, nul, 2, "c"), MF_EINVAL);
    assert_int_equal(mf_flow_set_switch(f, "start", NULL, targets, 2, "c"), MF_EINVAL);
    assert_int_equal(mf_flow_set_switch(f, "start", cases, targets, 2, "c"), MF_OK);
    assert_int_equal(mf_flow_step_transition(f, "start"), MF_TRANSITION_SWITCH);
    assert_int_equal(mf_flow_step_target_count(f, "start"), 2);
    expect_valid_flow(f); /* two cases to one step are fine */
    mf_flow_free(f);
}

/* ---- rules: splits and joins */

static void test_unclosed_split(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start~xs>a a>end end", MF_GRAPH_UNCLOSED_SPLIT, "foreach 'start'", "'end'");
    /* m is reached from inside split s and from outside it */
    EXPECT_PROBLEM("start?c>x:s,y:m s>a,b a>m b>m m>end end", MF_GRAPH_UNCLOSED_SPLIT,
                   "split 's'", "before 'm'");
    /* the inner split is closed, the outer one not: end is the meeting
     * point of start's branches, so it should have been a join */
    EXPECT_PROBLEM("start>a,b a>c,d c>j d>j j*>end b>end end", MF_GRAPH_NOT_A_JOIN,
                   "'end'", "'start'");
    EXPECT_VALID("start~xs>a a>j j*>end end");
}

static void test_not_a_join(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start>a,b a>j b>j j>end end", MF_GRAPH_NOT_A_JOIN,
                   "'j'", "'a'", "'b'", "'start'");
    /* a split target that is also reached from a sibling branch */
    EXPECT_PROBLEM("start>a,b a>b b>end end", MF_GRAPH_NOT_A_JOIN, "'b'");
    EXPECT_VALID("start>a,b a>j b>j j*>end end");
}

static void test_join_mismatch(void **state)
{
    (void)state;
    /* j1 mixes a branch of start's split with a branch of a's split */
    EXPECT_PROBLEM("start>a,b a>c,d b>j1 c>j2 d>j1 j1*>j2 j2*>end end",
                   MF_GRAPH_JOIN_MISMATCH, "'j1'", "different splits");
    /* a branch that never reaches the join */
    EXPECT_PROBLEM("start>a,b,c a>j b>j c>x j*>x x*>end end", MF_GRAPH_JOIN_MISMATCH,
                   "'j'", "branch 'c'");
    /* nested, correctly joined */
    EXPECT_VALID("start>a,b a>c,d c>j2 d>j2 j2*>j1 b>j1 j1*>end end");
}

static void test_join_no_split(void **state)
{
    (void)state;
    EXPECT_PROBLEM("start>a a*>end end", MF_GRAPH_JOIN_NO_SPLIT, "'a'");
    EXPECT_PROBLEM("start>a,b a>j b>j j*>k k*>end end", MF_GRAPH_JOIN_NO_SPLIT, "'k'");
    EXPECT_VALID("start>a,b a>j b>j j*>k k>end end");
}

static void test_switch_in_split(void **state)
{
    (void)state;
    /* a branch of the switch runs off to end, past the join */
    EXPECT_PROBLEM("start>a,b a?c>x:p,y:end p>j b>j j*>end end", MF_GRAPH_SWITCH_IN_SPLIT,
                   "switch 'a'", "'start'");
    /* a branch of the switch jumps into the sibling branch */
    EXPECT_PROBLEM("start>a,b a?c>x:p,y:q b>q p>j q>j j*>end end",
                   MF_GRAPH_SWITCH_IN_SPLIT, "switch 'a'", "'q'");
    /* the branches of two switches pair up with two different joins */
    EXPECT_PROBLEM("start>a,b a?c>x:c,y:d b?c>x:e,y:f c>j1 e>j1 d>j2 f>j2 j1*>m j2*>m "
                   "m>end end", MF_GRAPH_SWITCH_IN_SPLIT, "switch 'a'", "'start'");
    /* a recursive switch going back into a foreach body it is not in */
    EXPECT_PROBLEM("start~xs>t t>j j*>s s?c>again:t,done:end end", MF_GRAPH_SWITCH_IN_SPLIT,
                   "switch 's'", "'t'");
    /* a recursive switch leaving its foreach body for a step before it */
    EXPECT_PROBLEM("start>p p~xs>t t?c>again:p,done:u u>j j*>end end",
                   MF_GRAPH_SWITCH_IN_SPLIT, "switch 't'", "'p'");
    /* the same switch, its branches meeting inside the split or at its join */
    mf_flow *f = build("start>a,b a?c>x:p,y:q p>j q>j b>j j*>end end");
    expect_valid_flow(f);
    assert_string_equal(mf_flow_step_split_parent(f, "j"), "start");
    size_t ji;
    assert_int_equal(mf__flow_find(f, "j", &ji), MF_OK);
    assert_int_equal(f->steps[ji].nparents, 3);
    mf_flow_free(f);
    EXPECT_VALID("start>a,b a?c>x:p,y:q p>r q>r r>j b>j j*>end end");
}

/* ---- computed structure */

static void test_nested_foreach_depths(void **state)
{
    (void)state;
    mf_flow *f = build("start~xs>a a~ys>b b~zs>c c>cj cj*>bj bj*>aj aj*>end end");
    expect_valid_flow(f);
    static const struct { const char *step; int depth; const char *parent; } want[] = {
        {"start", 0, NULL}, {"a", 1, NULL}, {"b", 2, NULL}, {"c", 3, NULL},
        {"cj", 2, "b"}, {"bj", 1, "a"}, {"aj", 0, "start"}, {"end", 0, NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(mf_flow_step_foreach_depth(f, want[i].step), want[i].depth);
        const char *p = mf_flow_step_split_parent(f, want[i].step);
        if (want[i].parent)
            assert_string_equal(p, want[i].parent);
        else
            assert_null(p);
    }
    assert_int_equal(mf_flow_step_foreach_depth(f, "nope"), MF_ENOTFOUND);
    /* the frame chain of c: zs in ys in xs */
    size_t ci;
    assert_int_equal(mf__flow_find(f, "c", &ci), MF_OK);
    const mf__graph_frame *fr = f->steps[ci].frame;
    assert_non_null(fr);
    assert_int_equal(fr->depth, 3);
    assert_string_equal(f->steps[fr->split].name, "b");
    assert_string_equal(f->steps[fr->up->split].name, "a");
    assert_string_equal(f->steps[fr->up->up->split].name, "start");
    assert_null(fr->up->up->up);
    size_t bi;
    assert_int_equal(mf__flow_find(f, "b", &bi), MF_OK);
    assert_string_equal(f->steps[f->steps[bi].matching_join].name, "cj");

    /* topological order: each step after its forward parents */
    for (size_t i = 0; i < f->nsteps; i++)
        for (size_t k = 0; k < f->steps[i].nparents; k++)
            assert_true(f->steps[f->steps[i].parents[k]].topo_pos < f->steps[i].topo_pos);
    assert_int_equal(f->topo[0], f->start);
    assert_true(mf__flow_validated(f));
    /* a change drops the validation */
    assert_int_equal(mf_flow_add_step(f, "extra", 0), MF_OK);
    assert_false(mf__flow_validated(f));
    assert_int_equal(mf_flow_step_foreach_depth(f, "a"), MF_ESTATE);
    assert_null(mf_flow_step_split_parent(f, "aj"));
    mf_flow_free(f);

    /* a foreach inside a static split, and a split inside a foreach */
    f = build("start>a,b a~xs>fa fa>fj fj*>j b>j j*>f f~ys>s s>p,q p>sj q>sj sj*>g "
              "g*>end end");
    expect_valid_flow(f);
    assert_int_equal(mf_flow_step_foreach_depth(f, "fa"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "fj"), 0);
    assert_int_equal(mf_flow_step_foreach_depth(f, "p"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "sj"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "g"), 0);
    assert_string_equal(mf_flow_step_split_parent(f, "sj"), "s");
    assert_string_equal(mf_flow_step_split_parent(f, "g"), "f");
    assert_string_equal(mf_flow_step_split_parent(f, "j"), "start");
    mf_flow_free(f);
}

static void test_long_chain_fast(void **state)
{
    (void)state;
    enum { N = 1000 };
    mf_flow *f = NULL;
    assert_int_equal(mf_flow_new(&f, "TestFlow"), MF_OK);
    char name[32], next[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, i == 0 ? "start" : "s%d", i);
        assert_int_equal(mf_flow_add_step(f, name, 0), MF_OK);
    }
    assert_int_equal(mf_flow_add_step(f, "end", 0), MF_OK);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, i == 0 ? "start" : "s%d", i);
        snprintf(next, sizeof next, i == N - 1 ? "end" : "s%d", i + 1);
        const char *t = next;
        assert_int_equal(mf_flow_set_next(f, name, &t, 1), MF_OK);
    }
    clock_t t0 = clock();
    for (int r = 0; r < 10; r++)
        assert_int_equal(mf_flow_validate(f), MF_OK);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 1.0)
        fail_msg("10 validations of a %d-step chain took %.2f s", N, secs);
    assert_int_equal(mf_flow_step_count(f), N + 1);
    assert_string_equal(mf_flow_step_name(f, 500), "s500");

    /* round trip of the big flow too */
    mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
    save(f, &a);
    mf_flow *g = NULL;
    assert_int_equal(mf_flow_load(&g, a.ptr, a.size), MF_OK);
    assert_int_equal(mf_flow_validate(g), MF_OK);
    save(g, &b);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.ptr, b.ptr, a.size);
    mf_buf_dispose(&a);
    mf_buf_dispose(&b);
    mf_flow_free(g);
    mf_flow_free(f);

    /* wide: a 1000-way split, and a 200-deep nest of foreaches */
    assert_int_equal(mf_flow_new(&f, "TestFlow"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "j", MF_STEP_JOIN), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "end", 0), MF_OK);
    static char names[N][16];
    const char *targets[N];
    const char *j = "j", *e = "end";
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "b%d", i);
        targets[i] = names[i];
        assert_int_equal(mf_flow_add_step(f, names[i], 0), MF_OK);
        assert_int_equal(mf_flow_set_next(f, names[i], &j, 1), MF_OK);
    }
    assert_int_equal(mf_flow_set_next(f, "start", targets, N), MF_OK);
    assert_int_equal(mf_flow_set_next(f, "j", &e, 1), MF_OK);
    t0 = clock();
    assert_int_equal(mf_flow_validate(f), MF_OK);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 1.0);
    mf_flow_free(f);

    enum { D = 200 };
    assert_int_equal(mf_flow_new(&f, "TestFlow"), MF_OK);
    char body[D][16], joinn[D][16];
    for (int i = 0; i < D; i++) {
        snprintf(body[i], sizeof body[i], i ? "f%d" : "start", i);
        snprintf(joinn[i], sizeof joinn[i], "j%d", i);
        assert_int_equal(mf_flow_add_step(f, body[i], 0), MF_OK);
        assert_int_equal(mf_flow_add_step(f, joinn[i], MF_STEP_JOIN), MF_OK);
    }
    assert_int_equal(mf_flow_add_step(f, "leaf", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "end", 0), MF_OK);
    for (int i = 0; i < D; i++) {
        const char *inner = i + 1 < D ? body[i + 1] : "leaf";
        const char *after = i ? joinn[i - 1] : "end";
        assert_int_equal(mf_flow_set_foreach(f, body[i], inner, "xs"), MF_OK);
        assert_int_equal(mf_flow_set_next(f, joinn[i], &after, 1), MF_OK);
    }
    const char *lj = joinn[D - 1];
    assert_int_equal(mf_flow_set_next(f, "leaf", &lj, 1), MF_OK);
    assert_int_equal(mf_flow_validate(f), MF_OK);
    assert_int_equal(mf_flow_step_foreach_depth(f, "leaf"), D);
    assert_int_equal(mf_flow_step_foreach_depth(f, "j0"), 0);
    assert_string_equal(mf_flow_step_split_parent(f, "j0"), "start");
    mf_flow_free(f);
}

/* ---- builder and accessors */

static void test_builder_and_accessors(void **state)
{
    (void)state;
    mf_flow *f = NULL;
    assert_int_equal(mf_flow_new(NULL, "F"), MF_EINVAL);
    assert_int_equal(mf_flow_new(&f, "9bad"), MF_EINVAL);
    assert_null(f);
    assert_int_equal(mf_flow_new(&f, "data"), MF_EINVAL);
    assert_int_equal(mf_flow_new(&f, NULL), MF_EINVAL);
    mf_flow_free(NULL);

    f = build("start>a a>end end");
    assert_string_equal(mf_flow_name(f), "TestFlow");
    assert_int_equal(mf_flow_add_step(f, "b", 0x4), MF_EINVAL);
    assert_int_equal(mf_flow_add_step(NULL, "b", 0), MF_EINVAL);
    const char *t = "end";
    assert_int_equal(mf_flow_set_next(f, "zzz", &t, 1), MF_ENOTFOUND);
    assert_int_equal(mf_flow_set_next(f, "a", NULL, 1), MF_EINVAL);
    assert_int_equal(mf_flow_set_next(f, "a", &t, 0), MF_EINVAL);
    const char *empty = "";
    assert_int_equal(mf_flow_set_next(f, "a", &empty, 1), MF_EINVAL);
    assert_int_equal(mf_flow_set_next(NULL, "a", &t, 1), MF_EINVAL);

    assert_int_equal(mf_flow_step_transition(f, "a"), MF_TRANSITION_LINEAR);
    assert_int_equal(mf_flow_step_transition(f, "end"), MF_TRANSITION_NONE);
    assert_int_equal(mf_flow_step_transition(f, "zzz"), MF_ENOTFOUND);
    assert_contains(mf_error_last(), "'zzz'");
    assert_int_equal(mf_flow_step_transition(NULL, "a"), MF_EINVAL);
    assert_int_equal(mf_flow_step_is_join(f, "a"), 0);
    assert_int_equal(mf_flow_step_is_join(f, "zzz"), MF_ENOTFOUND);
    assert_int_equal(mf_flow_step_target_count(f, "a"), 1);
    assert_int_equal(mf_flow_step_target_count(f, "end"), 0);
    assert_int_equal(mf_flow_step_target_count(f, "zzz"), 0);
    assert_string_equal(mf_flow_step_target(f, "a", 0), "end");
    assert_null(mf_flow_step_target(f, "a", 1));
    assert_null(mf_flow_step_case(f, "a", 0));
    assert_null(mf_flow_step_var(f, "a"));
    assert_null(mf_flow_step_name(f, 3));
    assert_null(mf_flow_step_name(NULL, 0));
    assert_int_equal(mf_flow_step_count(NULL), 0);
    assert_null(mf_flow_name(NULL));
    assert_int_equal(mf_flow_problem(NULL), MF_EINVAL);
    assert_int_equal(mf_flow_validate(NULL), MF_EINVAL);
    assert_null(mf_flow_step_split_parent(f, "a")); /* not validated */
    assert_int_equal(mf_flow_step_foreach_depth(f, "a"), MF_ESTATE);

    /* attributes: set, replace, remove, order kept */
    assert_int_equal(mf_flow_set_step_attr(f, "a", "retry.times", "3"), MF_OK);
    assert_int_equal(mf_flow_set_step_attr(f, "a", "timeout.seconds", "60"), MF_OK);
    assert_int_equal(mf_flow_set_step_attr(f, "a", "retry.times", "5"), MF_OK);
    assert_string_equal(mf_flow_step_attr(f, "a", "retry.times"), "5");
    assert_null(mf_flow_step_attr(f, "a", "nope"));
    assert_null(mf_flow_step_attr(f, "zzz", "retry.times"));
    assert_int_equal(mf_flow_set_step_attr(f, "a", "", "x"), MF_EINVAL);
    assert_int_equal(mf_flow_set_step_attr(f, "a", NULL, "x"), MF_EINVAL);
    assert_int_equal(mf_flow_set_step_attr(f, "zzz", "k", "x"), MF_ENOTFOUND);
    assert_int_equal(mf_flow_set_step_attr(f, "a", "gone", "x"), MF_OK);
    assert_int_equal(mf_flow_set_step_attr(f, "a", "gone", NULL), MF_OK);
    assert_null(mf_flow_step_attr(f, "a", "gone"));
    size_t ai;
    assert_int_equal(mf__flow_find(f, "a", &ai), MF_OK);
    assert_int_equal(f->steps[ai].nattrs, 2);
    assert_string_equal(f->steps[ai].attrs[0].key, "retry.times");

    /* replacing a transition */
    const char *two[] = {"b1", "b2"};
    assert_int_equal(mf_flow_set_next(f, "a", two, 2), MF_OK);
    assert_int_equal(mf_flow_step_transition(f, "a"), MF_TRANSITION_SPLIT);
    assert_int_equal(mf_flow_validate(f), MF_EGRAPH);
    assert_int_equal(mf_flow_problem(f), MF_GRAPH_UNKNOWN_TARGET);
    assert_int_equal(mf_flow_set_next(f, "a", &t, 1), MF_OK);
    expect_valid_flow(f);
    assert_int_equal(mf_flow_step_foreach_depth(f, "a"), 0);
    assert_int_equal(mf_flow_step_foreach_depth(NULL, "a"), MF_EINVAL);
    mf_flow_free(f);
}

/* ---- spec: round trip and hostile input */

static mf_flow *rich_flow(void)
{
    mf_flow *f = build("start>a,b a~xs>fa fa?c>x:fb,y:fc fb>fd fc>fd fd>fj fj*>j "
                       "b>j j*>s s?cond>again:s,done:end end");
    assert_int_equal(mf_flow_set_step_attr(f, "fa", "retry.times", "3"), MF_OK);
    assert_int_equal(mf_flow_set_step_attr(f, "fa", "resources.cpu", "2"), MF_OK);
    assert_int_equal(mf_flow_set_step_attr(f, "end", "card.type", "default"), MF_OK);
    return f;
}

static void test_round_trip(void **state)
{
    (void)state;
    mf_flow *f = rich_flow();
    expect_valid_flow(f);
    mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
    save(f, &a);
    mf_flow *g = NULL;
    assert_int_equal(mf_flow_load(&g, a.ptr, a.size), MF_OK);
    expect_valid_flow(g);
    save(g, &b);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.ptr, b.ptr, a.size);
    /* the same model, step by step, in declaration order */
    assert_string_equal(mf_flow_name(g), "TestFlow");
    assert_int_equal(mf_flow_step_count(g), mf_flow_step_count(f));
    for (size_t i = 0; i < mf_flow_step_count(f); i++) {
        const char *n = mf_flow_step_name(f, i);
        assert_string_equal(mf_flow_step_name(g, i), n);
        assert_int_equal(mf_flow_step_transition(g, n), mf_flow_step_transition(f, n));
        assert_int_equal(mf_flow_step_is_join(g, n), mf_flow_step_is_join(f, n));
        assert_int_equal(mf_flow_step_foreach_depth(g, n), mf_flow_step_foreach_depth(f, n));
        size_t nt = mf_flow_step_target_count(f, n);
        assert_int_equal(mf_flow_step_target_count(g, n), nt);
        for (size_t k = 0; k < nt; k++) {
            assert_string_equal(mf_flow_step_target(g, n, k), mf_flow_step_target(f, n, k));
            const char *c = mf_flow_step_case(f, n, k);
            if (c)
                assert_string_equal(mf_flow_step_case(g, n, k), c);
        }
    }
    assert_string_equal(mf_flow_step_attr(g, "fa", "resources.cpu"), "2");
    assert_string_equal(mf_flow_step_var(g, "a"), "xs");
    assert_string_equal(mf_flow_step_var(g, "s"), "cond");
    /* saving into a used buffer replaces its contents */
    save(g, &b);
    assert_int_equal(a.size, b.size);
    assert_int_equal(mf_flow_save(NULL, &b), MF_EINVAL);
    assert_int_equal(mf_flow_save(g, NULL), MF_EINVAL);
    mf_buf_dispose(&a);
    mf_buf_dispose(&b);
    mf_flow_free(g);

    /* an unvalidated, even invalid, flow round-trips too */
    assert_int_equal(mf_flow_add_step(f, "loose", MF_STEP_JOIN), MF_OK);
    save(f, &a);
    assert_int_equal(mf_flow_load(&g, a.ptr, a.size), MF_OK);
    save(g, &b);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.ptr, b.ptr, a.size);
    mf_buf_dispose(&a);
    mf_buf_dispose(&b);
    mf_flow_free(g);
    mf_flow_free(f);
}

static void expect_load(const void *data, size_t len, int code, const char *needle)
{
    mf_flow *f = (mf_flow *)(uintptr_t)1;
    int rc = mf_flow_load(&f, data, len);
    if (rc != code)
        fail_msg("expected %d, got %d: %s", code, rc, mf_error_last());
    if (code != MF_OK) {
        assert_null(f);
        assert_int_equal(mf_error_last_code(), code);
        if (needle)
            assert_contains(mf_error_last(), needle);
    }
    mf_flow_free(f);
}

static void test_load_truncated(void **state)
{
    (void)state;
    mf_flow *f = rich_flow();
    mf_buf a = MF_BUF_INIT;
    save(f, &a);
    mf_flow_free(f);
    /* every proper prefix is one incomplete object */
    for (size_t n = 0; n < a.size; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, a.ptr, n);
        expect_load(copy, n, MF_ECORRUPT, "flow spec");
        free(copy);
    }
    /* trailing bytes are corrupt too */
    char *longer = malloc(a.size + 1);
    memcpy(longer, a.ptr, a.size);
    longer[a.size] = '\0';
    expect_load(longer, a.size + 1, MF_ECORRUPT, "flow spec");
    free(longer);
    mf_buf_dispose(&a);
}

static void test_load_bitflips(void **state)
{
    (void)state;
    mf_flow *f = rich_flow();
    mf_buf a = MF_BUF_INIT;
    save(f, &a);
    mf_flow_free(f);
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < a.size; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char *copy = malloc(a.size);
            memcpy(copy, a.ptr, a.size);
            copy[i] ^= (char)(1 << bit);
            mf_flow *g = NULL;
            int rc = mf_flow_load(&g, copy, a.size);
            if (rc == MF_OK) {
                ok++;
                /* whatever loaded must validate without crashing and
                 * round-trip */
                mf_flow_validate(g);
                mf_buf b = MF_BUF_INIT, c = MF_BUF_INIT;
                save(g, &b);
                mf_flow *h = NULL;
                assert_int_equal(mf_flow_load(&h, b.ptr, b.size), MF_OK);
                save(h, &c);
                assert_int_equal(b.size, c.size);
                assert_memory_equal(b.ptr, c.ptr, b.size);
                mf_flow_free(h);
                mf_buf_dispose(&b);
                mf_buf_dispose(&c);
            } else {
                bad++;
                assert_null(g);
                if (rc != MF_ECORRUPT && rc != MF_EVERSION && rc != MF_EINVAL)
                    fail_msg("byte %zu bit %d: unexpected %d: %s", i, bit, rc,
                             mf_error_last());
            }
            mf_flow_free(g);
            free(copy);
        }
    }
    assert_true(bad > 0);
    assert_true(ok > 0); /* e.g. flips inside names */
    mf_buf_dispose(&a);
}

static void test_load_hostile(void **state)
{
    (void)state;
    /* map32 claiming 0x0c454545 pairs in 7 bytes */
    static const unsigned char map32[] = {0xdf, 0x0c, 0x45, 0x45, 0x45, 0x45, 0x45};
    expect_load(map32, sizeof map32, MF_ECORRUPT, "flow spec");
    static const unsigned char map32max[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    expect_load(map32max, sizeof map32max, MF_ECORRUPT, "flow spec");
    static const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    expect_load(arr32, sizeof arr32, MF_ECORRUPT, "flow spec");
    static const unsigned char str32[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    expect_load(str32, sizeof str32, MF_ECORRUPT, "flow spec");
    /* {"format":1,"name":"F","steps": array32 of 2^32-1} with 3 bytes left */
    static const unsigned char steps32[] = {
        0x83, 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 0x01, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'F',
        0xa5, 's', 't', 'e', 'p', 's', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x80, 0x80, 0x80};
    expect_load(steps32, sizeof steps32, MF_ECORRUPT, "flow spec");
    /* deep nesting */
    unsigned char deep[4096];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0xc0;
    expect_load(deep, sizeof deep, MF_ECORRUPT, "flow spec");
    expect_load("", 0, MF_ECORRUPT, "flow spec");
    expect_load(NULL, 0, MF_ECORRUPT, "flow spec");
    expect_load(NULL, 5, MF_EINVAL, NULL);
    assert_int_equal(mf_flow_load(NULL, map32, sizeof map32), MF_EINVAL);
    static const unsigned char nil = 0xc0;
    expect_load(&nil, 1, MF_ECORRUPT, "not a map");
}

/* Pack {"format":F,"name":N,"steps":[<one step map from the callback>]}. */
static void pack_top(msgpack_sbuffer *sb, int format_kind, const char *name, pack_fn step)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "format");
    switch (format_kind) {
    case 1: msgpack_pack_int(&pk, 1); break;
    case 2: msgpack_pack_int(&pk, 2); break;
    case -1: msgpack_pack_int(&pk, -1); break;
    default: pk_str(&pk, "1"); break;
    }
    pk_str(&pk, "name");
    pk_str(&pk, name);
    pk_str(&pk, "steps");
    msgpack_pack_array(&pk, 1);
    step(&pk);
}

static void st_ok(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
}
static void st_notmap(msgpack_packer *pk) { msgpack_pack_int(pk, 7); }
static void st_noname(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "transition"); pk_str(pk, "none");
}
static void st_badtrans(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "teleport");
}
static void st_linear2(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "start");
    pk_str(pk, "transition"); pk_str(pk, "linear");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "a"); pk_str(pk, "b");
}
static void st_nul(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "name"); msgpack_pack_str_with_body(pk, "st\0rt", 5);
    pk_str(pk, "transition"); pk_str(pk, "none");
}
static void st_dupkey(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
    pk_str(pk, "name"); pk_str(pk, "end");
}
static void st_dupattr(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
    pk_str(pk, "attrs"); msgpack_pack_map(pk, 2);
    pk_str(pk, "k"); pk_str(pk, "1"); pk_str(pk, "k"); pk_str(pk, "2");
}
static void st_attrint(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
    pk_str(pk, "attrs"); msgpack_pack_map(pk, 1); pk_str(pk, "k"); msgpack_pack_int(pk, 3);
}
static void st_caseslinear(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    pk_str(pk, "name"); pk_str(pk, "start");
    pk_str(pk, "transition"); pk_str(pk, "linear");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 1); pk_str(pk, "end");
    pk_str(pk, "cases"); msgpack_pack_array(pk, 1); pk_str(pk, "x");
}
static void st_casecount(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    pk_str(pk, "name"); pk_str(pk, "start");
    pk_str(pk, "transition"); pk_str(pk, "switch");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "end"); pk_str(pk, "end");
    pk_str(pk, "cases"); msgpack_pack_array(pk, 1); pk_str(pk, "x");
    pk_str(pk, "var"); pk_str(pk, "c");
}
static void st_varsplit(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    pk_str(pk, "name"); pk_str(pk, "start");
    pk_str(pk, "transition"); pk_str(pk, "split");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "a"); pk_str(pk, "b");
    pk_str(pk, "var"); pk_str(pk, "c");
}
static void st_jointype(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
    pk_str(pk, "join"); msgpack_pack_int(pk, 1);
}
static void st_unknownkey(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
    pk_str(pk, "doc"); pk_str(pk, "ignored");
}
static void st_intkey(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "end");
    pk_str(pk, "transition"); pk_str(pk, "none");
    msgpack_pack_int(pk, 5); pk_str(pk, "x");
}
static void st_targetint(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "name"); pk_str(pk, "start");
    pk_str(pk, "transition"); pk_str(pk, "split");
    pk_str(pk, "targets"); msgpack_pack_array(pk, 2); pk_str(pk, "a"); msgpack_pack_int(pk, 1);
}

static void check_top(int format_kind, const char *name, pack_fn step, int code,
                      const char *needle)
{
    msgpack_sbuffer sb;
    pack_top(&sb, format_kind, name, step);
    expect_load(sb.data, sb.size, code, needle);
    msgpack_sbuffer_destroy(&sb);
}

static void test_load_structure(void **state)
{
    (void)state;
    check_top(1, "F", st_ok, MF_OK, NULL);
    check_top(2, "F", st_ok, MF_EVERSION, "format 2");
    check_top(-1, "F", st_ok, MF_ECORRUPT, "'format'");
    check_top(0, "F", st_ok, MF_ECORRUPT, "'format'");
    check_top(1, "9F", st_ok, MF_EINVAL, "flow spec");
    check_top(1, "F", st_notmap, MF_ECORRUPT, "step #0 is not a map");
    check_top(1, "F", st_noname, MF_ECORRUPT, "no 'name'");
    check_top(1, "F", st_badtrans, MF_ECORRUPT, "'transition'");
    check_top(1, "F", st_linear2, MF_ECORRUPT, "exactly one target");
    check_top(1, "F", st_nul, MF_ECORRUPT, "NUL");
    check_top(1, "F", st_dupkey, MF_ECORRUPT, "'name' appears twice");
    check_top(1, "F", st_dupattr, MF_ECORRUPT, "attribute 'k' appears twice");
    check_top(1, "F", st_attrint, MF_ECORRUPT, "attribute 'k' is not a string");
    check_top(1, "F", st_caseslinear, MF_ECORRUPT, "'cases' on a linear");
    check_top(1, "F", st_casecount, MF_ECORRUPT, "1 cases for 2 targets");
    check_top(1, "F", st_varsplit, MF_ECORRUPT, "'var' on a split");
    check_top(1, "F", st_jointype, MF_ECORRUPT, "'join' is not a boolean");
    check_top(1, "F", st_unknownkey, MF_OK, NULL);
    check_top(1, "F", st_intkey, MF_ECORRUPT, "key #2 is not a string");
    check_top(1, "F", st_targetint, MF_ECORRUPT, "'targets' item 1 is not a string");

    /* missing top-level fields and a non-map root */
    static const unsigned char nofmt[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'F'};
    expect_load(nofmt, sizeof nofmt, MF_ECORRUPT, "no 'format'");
    static const unsigned char nosteps[] = {0x82, 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 0x01,
                                            0xa4, 'n', 'a', 'm', 'e', 0xa1, 'F'};
    expect_load(nosteps, sizeof nosteps, MF_ECORRUPT, "no 'steps'");
    /* a future format is refused before its shape is looked at */
    static const unsigned char v9[] = {0x81, 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 0x09};
    expect_load(v9, sizeof v9, MF_EVERSION, "format 9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_reserved_name),
        cmocka_unit_test(test_duplicate_step),
        cmocka_unit_test(test_start_end),
        cmocka_unit_test(test_unknown_target),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_dead_end),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_recursive_switch),
        cmocka_unit_test(test_switch_converges_without_join),
        cmocka_unit_test(test_bad_split),
        cmocka_unit_test(test_bad_foreach),
        cmocka_unit_test(test_bad_switch),
        cmocka_unit_test(test_unclosed_split),
        cmocka_unit_test(test_not_a_join),
        cmocka_unit_test(test_join_mismatch),
        cmocka_unit_test(test_join_no_split),
        cmocka_unit_test(test_switch_in_split),
        cmocka_unit_test(test_nested_foreach_depths),
        cmocka_unit_test(test_long_chain_fast),
        cmocka_unit_test(test_builder_and_accessors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_load_truncated),
        cmocka_unit_test(test_load_bitflips),
        cmocka_unit_test(test_load_hostile),
        cmocka_unit_test(test_load_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
