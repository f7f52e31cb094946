/* Pinned values and struct layouts of the public ABI. Changing any of these
 * is an ABI break: append fields and bump the struct's version instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <metaflow.h>
#include <metaflow/sys/datastore.h>
#include <metaflow/sys/executor.h>

static void error_codes_pinned(void **state)
{
    (void)state;
    assert_int_equal(MF_OK, 0);
    assert_int_equal(MF_ERROR, -1);
    assert_int_equal(MF_EINVAL, -2);
    assert_int_equal(MF_ENOTFOUND, -3);
    assert_int_equal(MF_EEXISTS, -4);
    assert_int_equal(MF_EIO, -5);
    assert_int_equal(MF_ECORRUPT, -6);
    assert_int_equal(MF_ENOMEM, -7);
    assert_int_equal(MF_EVERSION, -8);
    assert_int_equal(MF_EBUSY, -9);
    assert_int_equal(MF_ETIMEOUT, -10);
    assert_int_equal(MF_EUSER, -11);
    assert_int_equal(MF_EGRAPH, -12);
    assert_int_equal(MF_ENOTSUP, -13);
    assert_int_equal(MF_ESTATE, -14);
    assert_int_equal(MF_ERANGE, -15);
    assert_int_equal(MF_ENOSPACE, -16);
    assert_int_equal(MF_EFAILED, -17);
    assert_int_equal(MF_EACCESS, -18);
}

static void enums_pinned(void **state)
{
    (void)state;
    assert_int_equal(MF_RUN_RUNNING, 0);
    assert_int_equal(MF_RUN_SUCCEEDED, 1);
    assert_int_equal(MF_RUN_FAILED, 2);
    assert_int_equal(MF_RUN_CRASHED, 3);
    assert_int_equal(MF_TASK_RUNNING, 0);
    assert_int_equal(MF_TASK_SUCCEEDED, 1);
    assert_int_equal(MF_TASK_FAILED, 2);
    assert_int_equal(MF_TRANSITION_NONE, 0);
    assert_int_equal(MF_TRANSITION_LINEAR, 1);
    assert_int_equal(MF_TRANSITION_SPLIT, 2);
    assert_int_equal(MF_TRANSITION_FOREACH, 3);
    assert_int_equal(MF_TRANSITION_SWITCH, 4);
    assert_int_equal(MF_GRAPH_NO_START, 1);
    assert_int_equal(MF_GRAPH_SWITCH_IN_SPLIT, 20);
    assert_int_equal(MF_STEP_JOIN, 1);
    assert_int_equal(MF_PUT_RAW, 1);
    assert_int_equal(MF_PUT_NO_INLINE, 2);
    assert_int_equal(MF_LIST_SUCCESSFUL, 1);
    assert_int_equal(MF_LIST_PRIVATE, 2);
    assert_int_equal(MF_DS_PUT_IF_ABSENT, 1);
    assert_int_equal(MF_DS_PUT_DEFER_SYNC, 2);
    assert_int_equal(MF_DS_PUT_CONTENT, 4);
    assert_int_equal(MF_ENGINE_READONLY, 1);
    assert_int_equal(MF_GC_DRY_RUN, 1);
}

#define FIELD(T, f, off) assert_int_equal(offsetof(T, f), (off))

static void layouts_pinned(void **state)
{
    (void)state;
    /* LP64 (x86_64, aarch64) layouts. */
    assert_int_equal(sizeof(void *), 8);
    assert_int_equal(sizeof(mf_buf), 24);
    FIELD(mf_buf, ptr, 0); FIELD(mf_buf, reserved, 8); FIELD(mf_buf, size, 16);

    assert_int_equal(MF_ENGINE_OPTIONS_VERSION, 1);
    assert_int_equal(sizeof(mf_engine_options), 48);
    FIELD(mf_engine_options, datastore, 8); FIELD(mf_engine_options, root, 16);
    FIELD(mf_engine_options, index_dir, 24); FIELD(mf_engine_options, index_map_size, 32);
    FIELD(mf_engine_options, flags, 40);

    assert_int_equal(MF_RUN_OPTIONS_VERSION, 1);
    assert_int_equal(sizeof(mf_run_options), 72);
    FIELD(mf_run_options, run_id, 8); FIELD(mf_run_options, user, 16);
    FIELD(mf_run_options, tags, 24); FIELD(mf_run_options, ntags, 32);
    FIELD(mf_run_options, param_names, 40); FIELD(mf_run_options, param_values, 48);
    FIELD(mf_run_options, nparams, 56); FIELD(mf_run_options, origin_run_id, 64);

    assert_int_equal(MF_TASK_OPTIONS_VERSION, 1);
    assert_int_equal(sizeof(mf_task_options), 72);
    FIELD(mf_task_options, task_id, 8); FIELD(mf_task_options, attempt, 16);
    FIELD(mf_task_options, foreach_index, 24); FIELD(mf_task_options, foreach_nsplits, 32);
    FIELD(mf_task_options, foreach_value, 40); FIELD(mf_task_options, foreach_depth, 48);
    FIELD(mf_task_options, input_paths, 56); FIELD(mf_task_options, ninputs, 64);

    assert_int_equal(MF_GC_OPTIONS_VERSION, 1);
    assert_int_equal(sizeof(mf_gc_options), 24);
    FIELD(mf_gc_options, grace_seconds, 8); FIELD(mf_gc_options, flags, 16);
    assert_int_equal(MF_GC_STATS_VERSION, 1);
    assert_int_equal(sizeof(mf_gc_stats), 56);
    FIELD(mf_gc_stats, manifests, 8); FIELD(mf_gc_stats, bytes_swept, 48);

    assert_int_equal(MF_DATASTORE_VERSION, 1);
    assert_int_equal(sizeof(mf_datastore), 72);
    FIELD(mf_datastore, free, 8); FIELD(mf_datastore, put, 16); FIELD(mf_datastore, get, 24);
    FIELD(mf_datastore, exists, 32); FIELD(mf_datastore, list, 40); FIELD(mf_datastore, del, 48);
    FIELD(mf_datastore, local_path, 56); FIELD(mf_datastore, sync, 64);
    assert_int_equal(sizeof(mf_ds_iovec), 16);

    assert_int_equal(MF_TASK_SPEC_VERSION, 1);
    assert_int_equal(MF_START_OPTIONS_VERSION, 1);
    assert_int_equal(MF_LOCAL_OPTIONS_VERSION, 1);
    assert_int_equal(MF_EXECUTOR_VERSION, 1);
    assert_int_equal(sizeof(mf_task_spec), 184);
    FIELD(mf_task_spec, pathspec, 48); FIELD(mf_task_spec, origin_run_id, 56); FIELD(mf_task_spec, foreach_depth, 88); FIELD(mf_task_spec, is_join, 112); FIELD(mf_task_spec, argv, 120); FIELD(mf_task_spec, env, 136); FIELD(mf_task_spec, cpu, 152); FIELD(mf_task_spec, memory_mb, 160); FIELD(mf_task_spec, gpu, 168); FIELD(mf_task_spec, timeout_us, 176); 
    assert_int_equal(sizeof(mf_start_options), 144);
    FIELD(mf_start_options, max_workers, 64); FIELD(mf_start_options, max_log_size, 72); FIELD(mf_start_options, executor, 80); FIELD(mf_start_options, command, 88); FIELD(mf_start_options, log_cb, 104); FIELD(mf_start_options, event_cb, 120); FIELD(mf_start_options, resume_step, 136); 
    assert_int_equal(sizeof(mf_local_options), 16);
    FIELD(mf_local_options, threads, 4); FIELD(mf_local_options, kill_grace_us, 8); 
    assert_int_equal(sizeof(mf_log_line), 56);
    FIELD(mf_log_line, step, 8); FIELD(mf_log_line, stream, 28); FIELD(mf_log_line, timestamp_us, 32); FIELD(mf_log_line, text, 40); FIELD(mf_log_line, len, 48); 
    assert_int_equal(sizeof(mf_run_event), 48);
    FIELD(mf_run_event, type, 4); FIELD(mf_run_event, step, 8); FIELD(mf_run_event, attempt, 24); FIELD(mf_run_event, exit_code, 28); FIELD(mf_run_event, run_status, 36); FIELD(mf_run_event, message, 40); 
    assert_int_equal(sizeof(mf_exec_event), 80);
    FIELD(mf_exec_event, handle, 8); FIELD(mf_exec_event, pid, 16); FIELD(mf_exec_event, stream, 24); FIELD(mf_exec_event, timestamp_us, 32); FIELD(mf_exec_event, data, 40); FIELD(mf_exec_event, len, 48); FIELD(mf_exec_event, exit_code, 56); FIELD(mf_exec_event, timed_out, 64); FIELD(mf_exec_event, message, 72); 
    assert_int_equal(sizeof(mf_executor), 56);
    FIELD(mf_executor, free, 8); FIELD(mf_executor, capabilities, 16); FIELD(mf_executor, submit, 24); FIELD(mf_executor, poll, 32); FIELD(mf_executor, cancel, 40); FIELD(mf_executor, fd, 48); 
    assert_int_equal(MF_EVENT_TASK_STARTED, 1);
    assert_int_equal(MF_EVENT_RUN_FINISHED, 7);
    assert_int_equal(MF_EXEC_STARTED, 1);
    assert_int_equal(MF_EXEC_EXITED, 3);
    assert_int_equal(MF_LOG_STDOUT, 1);
    assert_int_equal(MF_LOG_STDERR, 2);
}

static void init_functions_reject_unknown_versions(void **state)
{
    mf_engine_options eo;
    mf_run_options ro;
    mf_task_options to;
    mf_gc_options go;
    mf_datastore ds;
    (void)state;
    assert_int_equal(mf_engine_options_init(&eo, 99), MF_EVERSION);
    assert_int_equal(mf_run_options_init(&ro, 0), MF_EVERSION);
    assert_int_equal(mf_task_options_init(&to, 2), MF_EVERSION);
    assert_int_equal(mf_gc_options_init(&go, 7), MF_EVERSION);
    assert_int_equal(mf_datastore_init(&ds, 42), MF_EVERSION);
    assert_non_null(strstr(mf_error_last(), "invalid version 42 on mf_datastore"));
    assert_int_equal(mf_engine_options_init(&eo, MF_ENGINE_OPTIONS_VERSION), MF_OK);
    assert_int_equal(eo.version, MF_ENGINE_OPTIONS_VERSION);
    assert_null(eo.root);
    assert_int_equal(mf_gc_options_init(&go, MF_GC_OPTIONS_VERSION), MF_OK);
    assert_true(go.grace_seconds < 0);
    assert_int_equal(mf_datastore_init(&ds, MF_DATASTORE_VERSION), MF_OK);
    assert_int_equal(ds.version, MF_DATASTORE_VERSION);
    assert_null(ds.put);

    mf_start_options so;
    mf_local_options lo;
    mf_executor ex;
    assert_int_equal(mf_start_options_init(&so, 2), MF_EVERSION);
    assert_int_equal(mf_local_options_init(&lo, 0), MF_EVERSION);
    assert_int_equal(mf_executor_init(&ex, 5), MF_EVERSION);
    assert_non_null(strstr(mf_error_last(), "invalid version 5 on mf_executor"));
    assert_int_equal(mf_start_options_init(&so, MF_START_OPTIONS_VERSION), MF_OK);
    assert_int_equal(so.max_workers, 0);
    assert_null(so.executor);
    assert_int_equal(mf_executor_init(&ex, MF_EXECUTOR_VERSION), MF_OK);
    assert_null(ex.submit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_codes_pinned),
        cmocka_unit_test(enums_pinned),
        cmocka_unit_test(layouts_pinned),
        cmocka_unit_test(init_functions_reject_unknown_versions),
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
