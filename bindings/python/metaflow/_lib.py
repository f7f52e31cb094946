"""ctypes bindings to libmetaflow: loading the library and the prototypes of
its public API. Everything else in the package calls C through here.

The library is found, in order: the file named by LIBMETAFLOW_PATH; a
libmetaflow.so.0 next to this package or in the lib directory above it (an
installed tree); the system's library path (ctypes.util.find_library).
"""
import ctypes
import os

c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_int32 = ctypes.c_int32
c_uint32 = ctypes.c_uint32
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
POINTER = ctypes.POINTER
byref = ctypes.byref

# Error codes (include/metaflow/common.h); pinned.
MF_OK = 0
MF_EINVAL = -2
MF_ENOTFOUND = -3
MF_EEXISTS = -4
MF_ECORRUPT = -6
MF_EBUSY = -9
MF_EGRAPH = -12
MF_ESTATE = -14
MF_EFAILED = -17
MF_EACCESS = -18

# Enums and flags.
MF_TRANSITION_NONE, MF_TRANSITION_LINEAR, MF_TRANSITION_SPLIT = 0, 1, 2
MF_TRANSITION_FOREACH, MF_TRANSITION_SWITCH = 3, 4
MF_STEP_JOIN = 0x1
MF_RUN_RUNNING, MF_RUN_SUCCEEDED, MF_RUN_FAILED, MF_RUN_CRASHED = 0, 1, 2, 3
MF_TASK_RUNNING, MF_TASK_SUCCEEDED, MF_TASK_FAILED = 0, 1, 2
MF_ENGINE_READONLY = 0x1
MF_LIST_SUCCESSFUL = 0x1
MF_LIST_PRIVATE = 0x2
MF_PUT_RAW = 0x1
MF_PUT_NO_INLINE = 0x2
MF_LOG_STDOUT, MF_LOG_STDERR = 1, 2
MF_LOG_TIMESTAMPS = 0x1
(MF_EVENT_TASK_STARTED, MF_EVENT_TASK_SUCCEEDED, MF_EVENT_TASK_FAILED,
 MF_EVENT_TASK_RETRYING, MF_EVENT_TASK_CAUGHT, MF_EVENT_TASK_CLONED,
 MF_EVENT_RUN_FINISHED) = range(1, 8)

RUN_STATUS = {0: "running", 1: "succeeded", 2: "failed", 3: "crashed"}


class MetaflowLibError(Exception):
    """A libmetaflow call failed; `code` is its MF_E* value."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class mf_buf(ctypes.Structure):
    _fields_ = [("ptr", c_void_p), ("reserved", c_size_t), ("size", c_size_t)]


class mf_engine_options(ctypes.Structure):
    _fields_ = [("version", c_uint), ("datastore", c_char_p), ("root", c_char_p),
                ("index_dir", c_char_p), ("index_map_size", c_uint64), ("flags", c_uint32)]


class mf_run_options(ctypes.Structure):
    _fields_ = [("version", c_uint), ("run_id", c_char_p), ("user", c_char_p),
                ("tags", POINTER(c_char_p)), ("ntags", c_size_t),
                ("param_names", POINTER(c_char_p)), ("param_values", POINTER(c_char_p)),
                ("nparams", c_size_t), ("origin_run_id", c_char_p)]


class mf_log_line(ctypes.Structure):
    _fields_ = [("version", c_uint), ("step", c_char_p), ("task_id", c_char_p),
                ("attempt", c_uint32), ("stream", c_int32), ("timestamp_us", c_int64),
                ("text", POINTER(ctypes.c_char)), ("len", c_size_t)]


class mf_run_event(ctypes.Structure):
    _fields_ = [("version", c_uint), ("type", c_int32), ("step", c_char_p),
                ("task_id", c_char_p), ("attempt", c_uint32), ("exit_code", c_int32),
                ("signal", c_int32), ("run_status", c_int32), ("message", c_char_p)]


class mf_task_spec(ctypes.Structure):
    _fields_ = [("version", c_uint), ("flow", c_char_p), ("run_id", c_char_p),
                ("step", c_char_p), ("task_id", c_char_p), ("attempt", c_uint32),
                ("max_attempts", c_uint32), ("pathspec", c_char_p),
                ("origin_run_id", c_char_p), ("foreach_index", POINTER(c_uint32)),
                ("foreach_nsplits", POINTER(c_uint32)), ("foreach_value", POINTER(c_char_p)),
                ("foreach_depth", c_size_t), ("input_paths", POINTER(c_char_p)),
                ("ninputs", c_size_t), ("is_join", c_uint32), ("argv", POINTER(c_char_p)),
                ("argc", c_size_t), ("env", POINTER(c_char_p)), ("nenv", c_size_t),
                ("cpu", c_double), ("memory_mb", c_uint64), ("gpu", c_uint32),
                ("timeout_us", c_int64)]


LOG_CB = ctypes.CFUNCTYPE(None, POINTER(mf_log_line), c_void_p)
EVENT_CB = ctypes.CFUNCTYPE(None, POINTER(mf_run_event), c_void_p)
LAUNCH_FN = ctypes.CFUNCTYPE(c_int, POINTER(mf_task_spec), c_int, c_int, POINTER(c_int64),
                             c_void_p)


class mf_start_options(ctypes.Structure):
    _fields_ = [("version", c_uint), ("run_id", c_char_p), ("user", c_char_p),
                ("tags", POINTER(c_char_p)), ("ntags", c_size_t),
                ("param_names", POINTER(c_char_p)), ("param_values", POINTER(c_char_p)),
                ("nparams", c_size_t), ("max_workers", c_uint32), ("max_num_splits", c_uint32),
                ("max_log_size", c_uint64), ("executor", c_void_p),
                ("command", POINTER(c_char_p)), ("ncommand", c_size_t),
                ("log_cb", LOG_CB), ("log_payload", c_void_p),
                ("event_cb", EVENT_CB), ("event_payload", c_void_p),
                ("resume_step", c_char_p)]


class mf_gc_options(ctypes.Structure):
    _fields_ = [("version", c_uint), ("grace_seconds", c_int64), ("flags", c_uint32)]


def _candidates():
    env = os.environ.get("LIBMETAFLOW_PATH")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for d in (here, os.path.dirname(here), os.path.join(here, "..", "..", ".."),
              os.path.join(here, "..", "..")):
        for name in ("libmetaflow.so.0", "libmetaflow.so"):
            p = os.path.normpath(os.path.join(d, name))
            if os.path.exists(p):
                out.append(p)
    return out


def _load():
    tried = _candidates()
    errors = []
    for path in tried:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    if not os.environ.get("LIBMETAFLOW_PATH"):
        # The system's library path last; ctypes.util is slow to import.
        for path in ("libmetaflow.so.0",):
            try:
                return ctypes.CDLL(path)
            except OSError as e:
                errors.append("%s: %s" % (path, e))
        from ctypes import util as ctypes_util
        found = ctypes_util.find_library("metaflow")
        if found:
            try:
                return ctypes.CDLL(found)
            except OSError as e:
                errors.append("%s: %s" % (found, e))
    if os.environ.get("LIBMETAFLOW_PATH"):
        raise ImportError("cannot load libmetaflow from LIBMETAFLOW_PATH=%s: %s"
                          % (os.environ["LIBMETAFLOW_PATH"], "; ".join(errors)))
    raise ImportError("libmetaflow not found: set LIBMETAFLOW_PATH to libmetaflow.so.0, "
                      "or install the library (meson install)"
                      + ("; tried " + "; ".join(errors) if errors else ""))


lib = _load()

_P = c_void_p
_PP = POINTER(c_void_p)
_BUF = POINTER(mf_buf)
_SPECS = {
    # common
    "mf_version_string": (c_char_p, []),
    "mf_strerror": (c_char_p, [c_int]),
    "mf_error_last": (c_char_p, []),
    "mf_error_last_code": (c_int, []),
    "mf_error_clear": (None, []),
    "mf_buf_dispose": (None, [_BUF]),
    "mf_strlist_count": (c_size_t, [_P]),
    "mf_strlist_get": (c_char_p, [_P, c_size_t]),
    "mf_strlist_free": (None, [_P]),
    # flow
    "mf_flow_new": (c_int, [_PP, c_char_p]),
    "mf_flow_free": (None, [_P]),
    "mf_flow_add_step": (c_int, [_P, c_char_p, c_uint32]),
    "mf_flow_set_next": (c_int, [_P, c_char_p, POINTER(c_char_p), c_size_t]),
    "mf_flow_set_foreach": (c_int, [_P, c_char_p, c_char_p, c_char_p]),
    "mf_flow_set_switch": (c_int, [_P, c_char_p, POINTER(c_char_p), POINTER(c_char_p),
                                   c_size_t, c_char_p]),
    "mf_flow_set_step_attr": (c_int, [_P, c_char_p, c_char_p, c_char_p]),
    "mf_flow_validate": (c_int, [_P]),
    "mf_flow_problem": (c_int, [_P]),
    "mf_flow_step_foreach_depth": (c_int, [_P, c_char_p]),
    "mf_flow_step_split_parent": (c_char_p, [_P, c_char_p]),
    # engine
    "mf_engine_open": (c_int, [_PP, POINTER(mf_engine_options)]),
    "mf_engine_free": (None, [_P]),
    "mf_engine_root": (c_char_p, [_P]),
    "mf_flow_list": (c_int, [_PP, _P]),
    # runs
    "mf_run_create": (c_int, [_PP, _P, c_char_p, POINTER(mf_run_options)]),
    "mf_run_finish": (c_int, [_P, c_int32]),
    "mf_run_open": (c_int, [_PP, _P, c_char_p, c_char_p]),
    "mf_run_free": (None, [_P]),
    "mf_run_flow": (c_char_p, [_P]),
    "mf_run_id": (c_char_p, [_P]),
    "mf_run_user": (c_char_p, [_P]),
    "mf_run_origin": (c_char_p, [_P]),
    "mf_run_created_at": (c_int64, [_P]),
    "mf_run_finished_at": (c_int64, [_P]),
    "mf_run_status_get": (c_int, [_P]),
    "mf_run_param": (c_int, [_P, c_char_p, _BUF]),
    "mf_run_params": (c_int, [_P, _PP]),
    "mf_run_tags": (c_int, [_P, _PP]),
    "mf_run_tags_update": (c_int, [_P, POINTER(c_char_p), c_size_t, POINTER(c_char_p),
                                   c_size_t]),
    "mf_run_list": (c_int, [_PP, _P, c_char_p, POINTER(c_char_p), c_size_t, c_uint32]),
    "mf_run_steps": (c_int, [_P, _PP]),
    "mf_run_tasks": (c_int, [_P, c_char_p, _PP]),
    # tasks and artifacts
    "mf_task_create": (c_int, [_PP, _P, c_char_p, c_void_p]),
    "mf_task_put_parts": (c_int, [_P, c_char_p, c_char_p, POINTER(c_void_p),
                                  POINTER(c_uint64), c_uint32, c_uint32]),
    "mf_task_commit": (c_int, [_P, c_int32]),
    "mf_task_open": (c_int, [_PP, _P, c_char_p]),
    "mf_task_free": (None, [_P]),
    "mf_task_pathspec": (c_char_p, [_P]),
    "mf_task_id": (c_char_p, [_P]),
    "mf_task_step": (c_char_p, [_P]),
    "mf_task_attempt": (c_uint32, [_P]),
    "mf_task_status_get": (c_int, [_P]),
    "mf_task_artifacts": (c_int, [_P, c_uint32, _PP]),
    "mf_task_artifact": (c_int, [_PP, _P, c_char_p]),
    "mf_artifact_free": (None, [_P]),
    "mf_artifact_name": (c_char_p, [_P]),
    "mf_artifact_encoding": (c_char_p, [_P]),
    "mf_artifact_key": (c_char_p, [_P]),
    "mf_artifact_part_count": (c_uint32, [_P]),
    "mf_artifact_part_size": (c_uint64, [_P, c_uint32]),
    "mf_artifact_size": (c_uint64, [_P]),
    "mf_artifact_read": (c_int, [_P, c_uint32, _BUF]),
    "mf_artifact_map": (c_int, [_P, c_uint32, POINTER(c_void_p), POINTER(c_uint64)]),
    "mf_artifact_is_zero_copy": (c_int, [_P, c_uint32]),
    # maintenance
    "mf_gc": (c_int, [_P, POINTER(mf_gc_options), c_void_p]),
    "mf_index_rebuild": (c_int, [_P]),
    # runtime
    "mf_local_options_init": (c_int, [c_void_p, c_uint]),
    "mf_executor_local_new": (c_int, [_PP, _P, c_void_p]),
    "mf_executor_local_set_launcher": (c_int, [_P, LAUNCH_FN, c_void_p]),
    "mf_executor_free": (None, [_P]),
    "mf_run_start": (c_int, [_PP, _P, _P, POINTER(mf_start_options)]),
    "mf_run_resume": (c_int, [_PP, _P, _P, c_char_p, POINTER(mf_start_options)]),
    "mf_run_poll": (c_int, [_P, c_int]),
    "mf_run_wait": (c_int, [_P]),
    "mf_run_cancel": (c_int, [_P]),
    "mf_run_failure": (c_char_p, [_P]),
    "mf_task_from_env": (c_int, [_PP, _PP]),
    "mf_task_input_count": (c_size_t, [_P]),
    "mf_task_input": (c_char_p, [_P, c_size_t]),
    "mf_task_input_open": (c_int, [_PP, _P, c_size_t]),
    "mf_task_foreach_depth": (c_size_t, [_P]),
    "mf_task_foreach_index": (c_uint32, [_P, c_size_t]),
    "mf_task_foreach_nsplits": (c_uint32, [_P, c_size_t]),
    "mf_task_foreach_value": (c_char_p, [_P, c_size_t]),
    "mf_task_set_foreach": (c_int, [_P, c_uint64, POINTER(c_char_p)]),
    "mf_task_set_switch": (c_int, [_P, c_char_p]),
    "mf_task_put_ref": (c_int, [_P, c_char_p, _P]),
    "mf_task_fail": (c_int, [_P, c_char_p]),
    "mf_task_log_read": (c_int, [_P, c_int32, c_uint32, _BUF]),
    "mf_task_failure": (c_int, [_P, _BUF]),
    "mf_task_origin": (c_char_p, [_P]),
    # client tests (single-part artifacts of other encodings, task logs)
    "mf_task_put": (c_int, [_P, c_char_p, c_char_p, c_void_p, c_uint64, c_uint32]),
    "mf_task_log_write": (c_int, [_P, c_int32, c_char_p, c_size_t]),
}

for _name, (_res, _args) in _SPECS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

MF_ENGINE_OPTIONS_VERSION = 1
MF_RUN_OPTIONS_VERSION = 1
MF_START_OPTIONS_VERSION = 1
MF_GC_OPTIONS_VERSION = 1


def enc(s):
    """str -> bytes for C (None stays None)."""
    if s is None:
        return None
    return s.encode("utf-8") if isinstance(s, str) else s


def dec(b):
    return None if b is None else b.decode("utf-8", "replace")


def error_text():
    return dec(lib.mf_error_last()) or "unknown error"


def check(rc, what=None):
    """Raise MetaflowLibError for a negative return code."""
    if rc < 0:
        msg = error_text()
        raise MetaflowLibError(rc, "%s: %s" % (what, msg) if what else msg)
    return rc


def strlist(handle):
    """Consume an mf_strlist* into a Python list of str."""
    if not handle:
        return []
    try:
        n = lib.mf_strlist_count(handle)
        return [dec(lib.mf_strlist_get(handle, i)) for i in range(n)]
    finally:
        lib.mf_strlist_free(handle)


def buf_bytes(b):
    """Copy an mf_buf's bytes out and dispose of it."""
    try:
        if not b.ptr or not b.size:
            return b""
        return ctypes.string_at(b.ptr, b.size)
    finally:
        lib.mf_buf_dispose(byref(b))


def cstr_array(items):
    arr = (c_char_p * max(1, len(items)))()
    for i, s in enumerate(items):
        arr[i] = enc(s)
    return arr


def open_engine(root=None, readonly=False):
    o = mf_engine_options()
    o.version = MF_ENGINE_OPTIONS_VERSION
    o.root = enc(root)
    o.flags = MF_ENGINE_READONLY if readonly else 0
    h = c_void_p()
    check(lib.mf_engine_open(byref(h), byref(o)))
    return h
