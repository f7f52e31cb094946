"""Artifacts: Python values to and from the content store.

A value is pickled with protocol 5. Its out-of-band buffers (numpy arrays,
bytearray, PickleBuffer) become parts 1.. of the artifact, stored raw (and
so mappable); part 0 is the pickle stream. The encoding tag is "pickle5".
Loading maps every part: on a filesystem datastore the buffers are the
files' pages, zero-copy, so arrays come back READ-ONLY.

Values written by other hosts load too: "json" (json.loads), "str"/"utf-8"
(text), "raw" (bytes), "i64"/"f64" (8-byte native numbers).
"""
import ctypes
import json
import pickle
import struct

from . import _lib as L

ENCODING = "pickle5"

_PyBUF_SIMPLE = 0


class _Py_buffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.py_object), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int),
                ("ndim", ctypes.c_int), ("format", ctypes.c_char_p),
                ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_Py_buffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_Py_buffer)]
_release_buffer.restype = None


class UnpicklableArtifact(Exception):
    pass


def dumps(value, name):
    """Pickle `value`: (main bytes, [contiguous out-of-band buffers])."""
    buffers = []
    try:
        main = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as e:  # noqa: BLE001 - any pickling error names the artifact
        raise UnpicklableArtifact("artifact '%s' cannot be pickled: %s: %s"
                                  % (name, type(e).__name__, e)) from None
    raws = []
    for b in buffers:
        try:
            raws.append(b.raw())
        except BufferError:  # not contiguous: copy it
            raws.append(memoryview(bytes(b)))
    return main, raws


def put(task, name, value, flags=0):
    """Store `value` as artifact `name` of the writable task handle."""
    main, raws = dumps(value, name)
    parts = [main] + raws
    n = len(parts)
    ptrs = (ctypes.c_void_p * n)()
    lens = (ctypes.c_uint64 * n)()
    views = []
    try:
        for i, p in enumerate(parts):
            view = _Py_buffer()
            L.check(_get_buffer(p, ctypes.byref(view), _PyBUF_SIMPLE), "buffer of %s" % name)
            views.append(view)
            ptrs[i] = view.buf
            lens[i] = view.len
        L.check(L.lib.mf_task_put_parts(task, L.enc(name), L.enc(ENCODING), ptrs, lens, n,
                                        flags),
                "storing artifact '%s'" % name)
    finally:
        for v in views:
            _release_buffer(ctypes.byref(v))


class _Mapping:
    """Keeps an mf_artifact (and so its mappings) alive while buffers
    made from it are."""

    __slots__ = ("handle",)

    def __init__(self, handle):
        self.handle = handle

    def __del__(self):
        h, self.handle = self.handle, None
        if h and L.lib is not None:
            L.lib.mf_artifact_free(h)


def _part_view(owner, handle, part):
    ptr = ctypes.c_void_p()
    ln = ctypes.c_uint64()
    L.check(L.lib.mf_artifact_map(handle, part, ctypes.byref(ptr), ctypes.byref(ln)))
    if not ln.value:
        return memoryview(b"")
    arr = (ctypes.c_char * ln.value).from_address(ptr.value)
    arr._mf_owner = owner  # the mapping lives as long as the array
    return memoryview(arr).cast("B").toreadonly()


def open_artifact(task, name):
    """mf_artifact handle of artifact `name` of an open task (None if absent)."""
    h = ctypes.c_void_p()
    rc = L.lib.mf_task_artifact(ctypes.byref(h), task, L.enc(name))
    if rc == L.MF_ENOTFOUND:
        L.lib.mf_error_clear()
        return None
    L.check(rc, "artifact '%s'" % name)
    return h


def decode(handle):
    """The Python value of an mf_artifact handle. Takes the handle."""
    owner = _Mapping(handle)
    encoding = L.dec(L.lib.mf_artifact_encoding(handle))
    nparts = L.lib.mf_artifact_part_count(handle)
    if encoding == ENCODING:
        main = _part_view(owner, handle, 0)
        buffers = [_part_view(owner, handle, i) for i in range(1, nparts)]
        return pickle.loads(main, buffers=buffers)
    b = L.mf_buf()
    L.check(L.lib.mf_artifact_read(handle, 0, ctypes.byref(b)))
    data = L.buf_bytes(b)
    if encoding == "json":
        return json.loads(data.decode("utf-8"))
    if encoding in ("str", "utf-8"):
        return data.decode("utf-8")
    if encoding == "i64" and len(data) == 8:
        return struct.unpack("=q", data)[0]
    if encoding == "f64" and len(data) == 8:
        return struct.unpack("=d", data)[0]
    return data


def load(task, name):
    """Load artifact `name` of an open task; KeyError if it has none."""
    h = open_artifact(task, name)
    if h is None:
        raise KeyError(name)
    return decode(h)


def info(task, name):
    """(content key, size in bytes, encoding) of an artifact, or None."""
    h = open_artifact(task, name)
    if h is None:
        return None
    try:
        return (L.dec(L.lib.mf_artifact_key(h)), L.lib.mf_artifact_size(h),
                L.dec(L.lib.mf_artifact_encoding(h)))
    finally:
        L.lib.mf_artifact_free(h)


def names(task, private=False):
    h = ctypes.c_void_p()
    L.check(L.lib.mf_task_artifacts(task, L.MF_LIST_PRIVATE if private else 0,
                                    ctypes.byref(h)))
    return L.strlist(h)
