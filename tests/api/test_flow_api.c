/* Public-API tests of flows: building, validating, saving and loading
 * through <metaflow.h> only, as a host (or the Python binding) would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <metaflow.h>

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static void next1(mf_flow *f, const char *step, const char *target)
{
    assert_int_equal(mf_flow_set_next(f, step, &target, 1), MF_OK);
}

/* start -> foreach over 'shards' -> train -> (switch on 'verdict':
 * retry: train itself, ok: score) -> score -> join -> end, with
 * attributes as decorators would set them. */
static mf_flow *training_flow(void)
{
    mf_flow *f = NULL;
    assert_int_equal(mf_flow_new(&f, "TrainFlow"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "train", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "score", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "gather", MF_STEP_JOIN), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "end", 0), MF_OK);
    assert_int_equal(mf_flow_set_foreach(f, "start", "train", "shards"), MF_OK);
    const char *cases[] = {"retry", "ok"};
    const char *targets[] = {"train", "score"};
    assert_int_equal(mf_flow_set_switch(f, "train", cases, targets, 2, "verdict"), MF_OK);
    next1(f, "score", "gather");
    next1(f, "gather", "end");
    assert_int_equal(mf_flow_set_step_attr(f, "train", "retry.times", "3"), MF_OK);
    assert_int_equal(mf_flow_set_step_attr(f, "train", "resources.gpu", "1"), MF_OK);
    return f;
}

static void test_build_and_validate(void **state)
{
    (void)state;
    mf_flow *f = training_flow();
    assert_int_equal(mf_flow_validate(f), MF_OK);
    assert_int_equal(mf_flow_problem(f), MF_GRAPH_OK);

    assert_string_equal(mf_flow_name(f), "TrainFlow");
    assert_int_equal(mf_flow_step_count(f), 5);
    static const char *const order[] = {"start", "train", "score", "gather", "end"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(mf_flow_step_name(f, i), order[i]);
    assert_null(mf_flow_step_name(f, 5));

    assert_int_equal(mf_flow_step_transition(f, "start"), MF_TRANSITION_FOREACH);
    assert_int_equal(mf_flow_step_transition(f, "train"), MF_TRANSITION_SWITCH);
    assert_int_equal(mf_flow_step_transition(f, "score"), MF_TRANSITION_LINEAR);
    assert_int_equal(mf_flow_step_transition(f, "end"), MF_TRANSITION_NONE);
    assert_int_equal(mf_flow_step_is_join(f, "gather"), 1);
    assert_int_equal(mf_flow_step_is_join(f, "score"), 0);
    assert_string_equal(mf_flow_step_var(f, "start"), "shards");
    assert_string_equal(mf_flow_step_var(f, "train"), "verdict");
    assert_int_equal(mf_flow_step_target_count(f, "train"), 2);
    assert_string_equal(mf_flow_step_target(f, "train", 0), "train");
    assert_string_equal(mf_flow_step_case(f, "train", 1), "ok");
    assert_string_equal(mf_flow_step_attr(f, "train", "retry.times"), "3");

    assert_int_equal(mf_flow_step_foreach_depth(f, "start"), 0);
    assert_int_equal(mf_flow_step_foreach_depth(f, "train"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "score"), 1);
    assert_int_equal(mf_flow_step_foreach_depth(f, "gather"), 0);
    assert_string_equal(mf_flow_step_split_parent(f, "gather"), "start");
    assert_null(mf_flow_step_split_parent(f, "score"));
    mf_flow_free(f);
}

static void test_invalid_graphs(void **state)
{
    (void)state;
    mf_flow *f = NULL;

    /* a split whose branches meet at a step not marked as a join */
    assert_int_equal(mf_flow_new(&f, "BadFlow"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "left", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "right", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "meet", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "end", 0), MF_OK);
    const char *both[] = {"left", "right"};
    assert_int_equal(mf_flow_set_next(f, "start", both, 2), MF_OK);
    next1(f, "left", "meet");
    next1(f, "right", "meet");
    next1(f, "meet", "end");
    assert_int_equal(mf_flow_validate(f), MF_EGRAPH);
    assert_int_equal(mf_error_last_code(), MF_EGRAPH);
    assert_int_equal(mf_flow_problem(f), MF_GRAPH_NOT_A_JOIN);
    assert_contains(mf_error_last(), "'meet'");
    assert_contains(mf_error_last(), "'start'");
    /* validation results are not available */
    assert_int_equal(mf_flow_step_foreach_depth(f, "meet"), MF_ESTATE);
    mf_flow_free(f);

    /* a plain loop */
    assert_int_equal(mf_flow_new(&f, "LoopFlow"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "a", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "end", 0), MF_OK);
    next1(f, "start", "a");
    const char *back[] = {"start", "end"};
    assert_int_equal(mf_flow_set_next(f, "a", back, 2), MF_OK);
    assert_int_equal(mf_flow_validate(f), MF_EGRAPH);
    assert_int_equal(mf_flow_problem(f), MF_GRAPH_CYCLE);
    assert_contains(mf_error_last(), "'a'");
    /* fixing it makes it valid */
    next1(f, "a", "end");
    assert_int_equal(mf_flow_validate(f), MF_OK);
    assert_int_equal(mf_flow_problem(f), MF_GRAPH_OK);
    mf_flow_free(f);

    /* no end */
    assert_int_equal(mf_flow_new(&f, "NoEnd"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_OK);
    assert_int_equal(mf_flow_validate(f), MF_EGRAPH);
    assert_int_equal(mf_flow_problem(f), MF_GRAPH_NO_END);
    mf_flow_free(f);
}

static void test_save_load(void **state)
{
    (void)state;
    mf_flow *f = training_flow();
    mf_buf a = MF_BUF_INIT, b = MF_BUF_INIT;
    assert_int_equal(mf_flow_save(f, &a), MF_OK);
    assert_true(a.size > 0);

    mf_flow *g = NULL;
    assert_int_equal(mf_flow_load(&g, a.ptr, a.size), MF_OK);
    assert_int_equal(mf_flow_validate(g), MF_OK);
    assert_int_equal(mf_flow_save(g, &b), MF_OK);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.ptr, b.ptr, a.size);
    assert_string_equal(mf_flow_step_attr(g, "train", "resources.gpu"), "1");
    assert_int_equal(mf_flow_step_foreach_depth(g, "train"), 1);
    mf_flow_free(g);

    /* truncated */
    g = (mf_flow *)(uintptr_t)1;
    assert_int_equal(mf_flow_load(&g, a.ptr, a.size - 1), MF_ECORRUPT);
    assert_null(g);
    assert_contains(mf_error_last(), "flow spec");
    /* the hostile map32 header */
    static const unsigned char map32[] = {0xdf, 0x0c, 0x45, 0x45, 0x45, 0x45, 0x45};
    assert_int_equal(mf_flow_load(&g, map32, sizeof map32), MF_ECORRUPT);
    /* an unknown format version */
    static const unsigned char v7[] = {0x81, 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 0x07};
    assert_int_equal(mf_flow_load(&g, v7, sizeof v7), MF_EVERSION);
    assert_contains(mf_error_last(), "format 7");

    mf_buf_dispose(&a);
    mf_buf_dispose(&b);
    mf_buf_dispose(&b);
    mf_flow_free(f);
}

static void test_null_and_errors(void **state)
{
    (void)state;
    mf_flow *f = NULL;
    mf_flow_free(NULL);
    assert_int_equal(mf_flow_new(NULL, "F"), MF_EINVAL);
    assert_int_equal(mf_flow_new(&f, "not a name"), MF_EINVAL);
    assert_contains(mf_error_last(), "not a name");
    assert_int_equal(mf_flow_add_step(NULL, "start", 0), MF_EINVAL);
    assert_int_equal(mf_flow_validate(NULL), MF_EINVAL);
    assert_int_equal(mf_flow_problem(NULL), MF_EINVAL);
    mf_buf b = MF_BUF_INIT;
    assert_int_equal(mf_flow_save(NULL, &b), MF_EINVAL);
    assert_int_equal(mf_flow_load(NULL, "", 0), MF_EINVAL);
    assert_null(mf_flow_name(NULL));
    assert_int_equal(mf_flow_step_count(NULL), 0);

    assert_int_equal(mf_flow_new(&f, "F"), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_OK);
    assert_int_equal(mf_flow_add_step(f, "start", 0), MF_EEXISTS);
    assert_int_equal(mf_flow_add_step(f, "next", 0), MF_EINVAL);
    assert_int_equal(mf_flow_add_step(f, "Upper", 0), MF_EINVAL);
    assert_int_equal(mf_flow_set_foreach(f, "missing", "start", "xs"), MF_ENOTFOUND);
    assert_contains(mf_error_last(), "'missing'");
    assert_int_equal(mf_flow_step_transition(f, "missing"), MF_ENOTFOUND);
    assert_int_equal(mf_flow_step_is_join(f, "missing"), MF_ENOTFOUND);
    assert_int_equal(mf_flow_step_foreach_depth(f, "missing"), MF_ENOTFOUND);
    assert_null(mf_flow_step_target(f, "missing", 0));
    assert_null(mf_flow_step_attr(f, "start", "nope"));
    mf_flow_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_validate),
        cmocka_unit_test(test_invalid_graphs),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_null_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
