"""Datastores for the client tests, written through libmetaflow's C API
(ctypes): runs, tasks and artifacts made by hand, a run made by the
runtime with shell-command steps, a resumed run and a crashed run.

Importing this module makes the package importable when the tests run
without PYTHONPATH / LIBMETAFLOW_PATH set (a build in <repo>/build).
"""
import ctypes
import os
import signal
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if "LIBMETAFLOW_PATH" not in os.environ:
    _built = os.path.join(REPO, "build", "lib", "libmetaflow.so.0")
    if os.path.exists(_built):
        os.environ["LIBMETAFLOW_PATH"] = _built
_PKG = os.path.join(REPO, "bindings", "python")
if _PKG not in sys.path:
    sys.path.insert(0, _PKG)

from metaflow import _lib as L  # noqa: E402
from metaflow import artifacts  # noqa: E402


class mf_task_options(ctypes.Structure):
    _fields_ = [("version", L.c_uint), ("task_id", L.c_char_p), ("attempt", L.c_uint32),
                ("foreach_index", L.POINTER(L.c_uint32)),
                ("foreach_nsplits", L.POINTER(L.c_uint32)),
                ("foreach_value", L.POINTER(L.c_char_p)), ("foreach_depth", L.c_size_t),
                ("input_paths", L.POINTER(L.c_char_p)), ("ninputs", L.c_size_t)]


class Writer:
    """A writable engine on `root` (freed by close())."""

    def __init__(self, root):
        self.root = root
        self.engine = L.open_engine(root=root, readonly=False)

    def close(self):
        e, self.engine = self.engine, None
        if e:
            L.lib.mf_engine_free(e)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, flow, user, tags=(), origin=None, run_id=None):
        o = L.mf_run_options()
        o.version = L.MF_RUN_OPTIONS_VERSION
        o.user = L.enc(user)
        tag_arr = L.cstr_array(list(tags))
        o.tags = ctypes.cast(tag_arr, L.POINTER(L.c_char_p))
        o.ntags = len(tags)
        o.origin_run_id = L.enc(origin)
        o.run_id = L.enc(run_id)
        h = L.c_void_p()
        L.check(L.lib.mf_run_create(L.byref(h), self.engine, L.enc(flow), L.byref(o)),
                "creating a run")
        return WRun(h, flow)


class WRun:
    """A run being written by this process."""

    def __init__(self, handle, flow):
        self.handle = handle
        self.flow = flow
        self.id = L.dec(L.lib.mf_run_id(handle))

    def task(self, step, values=None, status=L.MF_TASK_SUCCEEDED, task_id=None, attempt=0,
             foreach=(), inputs=(), raw=None, stdout=None):
        """Write and commit a task; returns its id. `values` are pickled
        artifacts, `raw` maps names to (encoding, bytes), `foreach` is a
        list of (index, nsplits, value)."""
        o = mf_task_options()
        o.version = 1
        o.task_id = L.enc(task_id)
        o.attempt = attempt
        n = len(foreach)
        idx = (L.c_uint32 * max(1, n))(*[f[0] for f in foreach])
        nsp = (L.c_uint32 * max(1, n))(*[f[1] for f in foreach])
        val = L.cstr_array([f[2] for f in foreach])
        o.foreach_index, o.foreach_nsplits = idx, nsp
        o.foreach_value = ctypes.cast(val, L.POINTER(L.c_char_p))
        o.foreach_depth = n
        ins = L.cstr_array(list(inputs))
        o.input_paths = ctypes.cast(ins, L.POINTER(L.c_char_p))
        o.ninputs = len(inputs)
        t = L.c_void_p()
        L.check(L.lib.mf_task_create(L.byref(t), self.handle, L.enc(step), L.byref(o)),
                "creating a task")
        try:
            for name, value in (values or {}).items():
                artifacts.put(t, name, value)
            for name, (encoding, data) in (raw or {}).items():
                L.check(L.lib.mf_task_put(t, L.enc(name), L.enc(encoding), data, len(data), 0))
            if stdout is not None:
                L.check(L.lib.mf_task_log_write(t, L.MF_LOG_STDOUT, L.enc(stdout), len(stdout)))
            L.check(L.lib.mf_task_commit(t, status), "committing a task")
            return L.dec(L.lib.mf_task_id(t))
        finally:
            L.lib.mf_task_free(t)

    def finish(self, status=L.MF_RUN_SUCCEEDED):
        L.check(L.lib.mf_run_finish(self.handle, status), "finishing a run")

    def free(self):
        h, self.handle = self.handle, None
        if h:
            L.lib.mf_run_free(h)


def crashed_run(root, flow, user):
    """Create a run (with a committed start task) in a forked child and
    SIGKILL the child before it finishes the run. Returns the run id."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its own engine, never the parent's
        try:
            os.close(rfd)
            w = Writer(root)
            r = w.run(flow, user)
            r.task("start", {"x": 1})
            os.write(wfd, r.id.encode() + b"\n")
            signal.pause()  # until killed
        finally:
            os._exit(1)
    os.close(wfd)
    try:
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(rfd, 256)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rfd)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    if not data.endswith(b"\n"):
        raise RuntimeError("the child died before creating its run")
    return data.decode().strip()


def _shell_flow(name, commands, attrs=()):
    """A linear flow start -> ... -> end whose steps run shell commands;
    `attrs` are more (step, key, value) step attributes."""
    fl = L.c_void_p()
    L.check(L.lib.mf_flow_new(L.byref(fl), L.enc(name)))
    steps = [s for s, _ in commands]
    for s in steps:
        L.check(L.lib.mf_flow_add_step(fl, L.enc(s), 0))
    for a, b in zip(steps, steps[1:]):
        arr = L.cstr_array([b])
        L.check(L.lib.mf_flow_set_next(fl, L.enc(a), arr, 1))
    for s, cmd in commands:
        L.check(L.lib.mf_flow_set_step_attr(fl, L.enc(s), b"command", L.enc(cmd)))
    for s, key, value in attrs:
        L.check(L.lib.mf_flow_set_step_attr(fl, L.enc(s), L.enc(key), L.enc(value)))
    return fl


def runtime_run(writer, name, commands, user, origin=None, attrs=()):
    """Run a shell-command flow with the runtime (resuming `origin` when
    given) and wait for it. Returns (run id, mf_run_wait's code)."""
    fl = _shell_flow(name, commands, attrs)
    o = L.mf_start_options()
    o.version = L.MF_START_OPTIONS_VERSION
    o.user = L.enc(user)
    o.max_workers = 2
    run = L.c_void_p()
    try:
        if origin is None:
            L.check(L.lib.mf_run_start(L.byref(run), writer.engine, fl, L.byref(o)))
        else:
            L.check(L.lib.mf_run_resume(L.byref(run), writer.engine, fl, L.enc(origin),
                                        L.byref(o)))
        rc = L.lib.mf_run_wait(run)
        run_id = L.dec(L.lib.mf_run_id(run))
        L.lib.mf_error_clear()
        return run_id, rc
    finally:
        L.lib.mf_run_free(run)
        L.lib.mf_flow_free(fl)
