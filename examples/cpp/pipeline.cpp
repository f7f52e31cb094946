// pipeline: libmetaflow from C++ (C++11 or later).
//
//   start --foreach--> measure (one per word) --> collect (join) --> end
//
// Shows the two things a C++ host needs: handles owned by std::unique_ptr
// with the library's free functions as deleters, and step functions as
// std::function objects called through one C trampoline, the payload
// pointing at the std::function. Library errors become exceptions on the
// host side; a step function never lets an exception cross into C.
//
//   c++ $(pkg-config --cflags metaflow) pipeline.cpp $(pkg-config --libs metaflow)

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <metaflow.h>

namespace mf {

// ---- errors

class Error : public std::runtime_error {
public:
    Error(int code, const std::string &context)
        : std::runtime_error(context + ": " + mf_error_last() + " (" + mf_strerror(code) + ")"),
          code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

// Every library call goes through here: a negative return becomes an
// Error carrying the thread's message, read at once (it is only valid
// until the next call).
inline void check(int rc, const char *what)
{
    if (rc < 0)
        throw Error(rc, what);
}

// ---- handles

template <class T, void (*Free)(T *)> struct Deleter {
    void operator()(T *p) const { Free(p); }
};

typedef std::unique_ptr<mf_engine, Deleter<mf_engine, mf_engine_free> > Engine;
typedef std::unique_ptr<mf_executor, Deleter<mf_executor, mf_executor_free> > Executor;
typedef std::unique_ptr<mf_flow, Deleter<mf_flow, mf_flow_free> > Flow;
typedef std::unique_ptr<mf_run, Deleter<mf_run, mf_run_free> > Run;
typedef std::unique_ptr<mf_task, Deleter<mf_task, mf_task_free> > Task;
typedef std::unique_ptr<mf_artifact, Deleter<mf_artifact, mf_artifact_free> > Artifact;
typedef std::unique_ptr<mf_strlist, Deleter<mf_strlist, mf_strlist_free> > StrList;

// An mf_buf that disposes of itself.
struct Buf {
    mf_buf b;
    Buf() { b.ptr = NULL; b.reserved = 0; b.size = 0; }
    ~Buf() { mf_buf_dispose(&b); }
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;
    std::string str() const { return std::string(b.ptr ? b.ptr : "", b.size); }
};

inline Engine open_engine()
{
    mf_engine *e = NULL;
    check(mf_engine_open(&e, NULL), "mf_engine_open");
    return Engine(e);
}

inline Task open_input(mf_task *task, size_t i)
{
    mf_task *in = NULL;
    check(mf_task_input_open(&in, task, i), "mf_task_input_open");
    return Task(in);
}

inline Task open_task(mf_engine *engine, const std::string &pathspec)
{
    mf_task *t = NULL;
    check(mf_task_open(&t, engine, pathspec.c_str()), "mf_task_open");
    return Task(t);
}

// ---- artifacts as text and integers

inline void put(mf_task *task, const std::string &name, const std::string &value)
{
    check(mf_task_put(task, name.c_str(), "str", value.data(), value.size(), 0),
          "mf_task_put");
}

inline void put(mf_task *task, const std::string &name, int64_t value)
{
    check(mf_task_put(task, name.c_str(), "i64", &value, sizeof value, 0), "mf_task_put");
}

inline std::string get_bytes(mf_task *task, const std::string &name)
{
    mf_artifact *a = NULL;
    check(mf_task_artifact(&a, task, name.c_str()), "mf_task_artifact");
    Artifact art(a);
    Buf buf;
    check(mf_artifact_read(art.get(), 0, &buf.b), "mf_artifact_read");
    return buf.str();
}

inline int64_t get_i64(mf_task *task, const std::string &name)
{
    std::string bytes = get_bytes(task, name);
    int64_t v = 0;
    if (bytes.size() != sizeof v)
        throw std::runtime_error("artifact '" + name + "' is not an i64");
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
}

// ---- steps as std::function

typedef std::function<void(mf_task *)> StepFn;

// The one C entry point of every step. It runs on a worker thread; what a
// step throws stays on this side of the C boundary and fails the attempt,
// its message in the task's stderr log.
// Nothing in the handlers allocates, so nothing there can throw again.
inline void log_line(mf_task *task, const char *text)
{
    mf_task_log_write(task, MF_LOG_STDERR, text, std::strlen(text));
    mf_task_log_write(task, MF_LOG_STDERR, "\n", 1);
}

extern "C" {
static int step_trampoline(mf_task *task, void *payload)
{
    try {
        (*static_cast<StepFn *>(payload))(task);
        return 0;
    } catch (const std::exception &e) {
        log_line(task, e.what());
    } catch (...) {
        log_line(task, "unknown C++ exception");
    }
    return 1;
}
}

// A local executor whose steps are std::functions. The functions live as
// long as the executor (std::list never moves its elements, so the payload
// pointers stay valid); the executor must outlive every run that uses it.
class LocalExecutor {
public:
    explicit LocalExecutor(mf_engine *engine)
    {
        mf_executor *x = NULL;
        check(mf_executor_local_new(&x, engine, NULL), "mf_executor_local_new");
        executor_.reset(x);
    }

    void step(const std::string &name, StepFn fn)
    {
        fns_.push_back(std::move(fn));
        check(mf_executor_local_set_step(executor_.get(), name.c_str(), step_trampoline,
                                         &fns_.back()),
              "mf_executor_local_set_step");
    }

    mf_executor *get() const { return executor_.get(); }

private:
    // Members are destroyed in reverse order: the executor goes first, so
    // no step function is freed while it could still be called.
    std::list<StepFn> fns_;
    Executor executor_;
};

}  // namespace mf

namespace {

const char *const kWords[] = { "alpha", "beta", "gamma", "delta", "epsilon" };
const size_t kNumWords = sizeof kWords / sizeof kWords[0];

mf::Flow build_flow()
{
    mf_flow *f = NULL;
    mf::check(mf_flow_new(&f, "PipelineFlow"), "mf_flow_new");
    mf::Flow flow(f);
    const char *collect = "collect", *end = "end";
    mf::check(mf_flow_add_step(f, "start", 0), "mf_flow_add_step");
    mf::check(mf_flow_add_step(f, "measure", 0), "mf_flow_add_step");
    mf::check(mf_flow_add_step(f, "collect", MF_STEP_JOIN), "mf_flow_add_step");
    mf::check(mf_flow_add_step(f, "end", 0), "mf_flow_add_step");
    mf::check(mf_flow_set_foreach(f, "start", "measure", "words"), "mf_flow_set_foreach");
    mf::check(mf_flow_set_next(f, "measure", &collect, 1), "mf_flow_set_next");
    mf::check(mf_flow_set_next(f, "collect", &end, 1), "mf_flow_set_next");
    mf::check(mf_flow_validate(f), "mf_flow_validate");
    return flow;
}

std::string only_task_pathspec(mf_run *run, const char *step)
{
    mf_strlist *l = NULL;
    mf::check(mf_run_tasks(run, step, &l), "mf_run_tasks");
    mf::StrList ids(l);
    if (mf_strlist_count(ids.get()) != 1)
        throw std::runtime_error(std::string("step '") + step + "' has not exactly one task");
    return std::string(mf_run_flow(run)) + "/" + mf_run_id(run) + "/" + step + "/" +
           mf_strlist_get(ids.get(), 0);
}

int run_pipeline()
{
    mf::Engine engine = mf::open_engine();
    mf::LocalExecutor executor(engine.get());

    // start: one measure task per word; the word goes as the foreach value.
    executor.step("start", [](mf_task *t) {
        mf::put(t, "count", static_cast<int64_t>(kNumWords));
        mf::check(mf_task_set_foreach(t, kNumWords, kWords), "mf_task_set_foreach");
    });
    executor.step("measure", [](mf_task *t) {
        std::string word = mf_task_foreach_value(t, 0);
        mf::put(t, "word", word);
        mf::put(t, "length", static_cast<int64_t>(word.size()));
    });
    // collect: inputs in split order, i.e. the order of kWords.
    executor.step("collect", [](mf_task *t) {
        std::string summary;
        int64_t total = 0;
        for (size_t i = 0; i < mf_task_input_count(t); i++) {
            mf::Task in = mf::open_input(t, i);
            int64_t len = mf::get_i64(in.get(), "length");
            summary += (i ? " " : "") + mf::get_bytes(in.get(), "word") + ":" +
                       std::to_string(len);
            total += len;
        }
        mf::put(t, "summary", summary);
        mf::put(t, "total", total);
    });
    executor.step("end", [](mf_task *) {});

    mf::Flow flow = build_flow();
    mf_start_options opts = MF_START_OPTIONS_INIT;
    opts.executor = executor.get();
    mf_run *r = NULL;
    mf::check(mf_run_start(&r, engine.get(), flow.get(), &opts), "mf_run_start");
    mf::Run run(r);
    std::printf("run %s/%s started\n", mf_run_flow(r), mf_run_id(r));
    mf::check(mf_run_wait(r), "mf_run_wait");

    mf::Task end = mf::open_task(engine.get(), only_task_pathspec(r, "end"));
    std::string summary = mf::get_bytes(end.get(), "summary");
    int64_t total = mf::get_i64(end.get(), "total");
    std::printf("end: %s\nend: total length = %lld\n", summary.c_str(),
                static_cast<long long>(total));

    int64_t expected = 0;
    for (size_t i = 0; i < kNumWords; i++)
        expected += static_cast<int64_t>(std::strlen(kWords[i]));
    if (total != expected || summary != "alpha:5 beta:4 gamma:5 delta:5 epsilon:7") {
        std::fprintf(stderr, "pipeline: unexpected result\n");
        return 1;
    }
    std::printf("run succeeded\n");
    // Locals go in reverse: end task, run, flow, executor, engine, which
    // is the order the library asks for.
    return 0;
}

}  // namespace

int main()
{
    try {
        return run_pipeline();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "pipeline: %s\n", e.what());
        return 1;
    }
}
