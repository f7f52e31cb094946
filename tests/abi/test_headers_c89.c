/* The public headers compile as C89 with -pedantic -Werror. */
#include <metaflow.h>
#include <metaflow/sys/datastore.h>
#include <metaflow/sys/executor.h>

int main(void)
{
    mf_buf buf = MF_BUF_INIT;
    mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
    mf_run_options ro = MF_RUN_OPTIONS_INIT;
    mf_task_options to = MF_TASK_OPTIONS_INIT;
    mf_gc_options go = MF_GC_OPTIONS_INIT;
    mf_datastore ds = MF_DATASTORE_INIT;
    mf_start_options so = MF_START_OPTIONS_INIT;
    mf_local_options lo = MF_LOCAL_OPTIONS_INIT;
    mf_executor ex = MF_EXECUTOR_INIT;
    (void)eo; (void)ro; (void)to; (void)go; (void)ds; (void)so; (void)lo; (void)ex;
    mf_buf_dispose(&buf);
    return mf_version() == MF_VERSION_NUMBER ? 0 : 1;
}
