// The public headers compile as C++ (-pedantic -Werror) and link.
#include <metaflow.h>
#include <metaflow/sys/datastore.h>
#include <metaflow/sys/executor.h>

int main()
{
    mf_buf buf = MF_BUF_INIT;
    mf_engine_options eo = MF_ENGINE_OPTIONS_INIT;
    mf_datastore ds = MF_DATASTORE_INIT;
    mf_start_options so = MF_START_OPTIONS_INIT;
    mf_executor ex = MF_EXECUTOR_INIT;
    (void)so;
    (void)ex;
    (void)eo;
    (void)ds;
    mf_buf_dispose(&buf);
    return mf_version() == MF_VERSION_NUMBER && mf_strerror(MF_ENOTFOUND)[0] ? 0 : 1;
}
