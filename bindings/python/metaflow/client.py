"""Metaflow's client API over libmetaflow: read past and running runs.

    from metaflow import Flow, Run, Task, namespace
    run = Flow("MyFlow").latest_run
    run.status, run.data.x, run["start"].task.stdout

Objects: Metaflow() > Flow > Run > Step > Task > DataArtifact, each made
from its pathspec ("Flow/run/step/task/name") or reached from its parent
by iteration and [id]. Iteration yields the newest first, like Metaflow.

Namespaces: every run carries the system tag "user:<name>" of who ran it.
The current namespace (default "user:<you>", None for all) filters what
Flow iteration and Flow.runs() see; making a Run, Step, Task or
DataArtifact of a run outside it raises MetaflowNamespaceMismatch, and an
object that does not exist raises MetaflowNotFound.

The datastore is found as libmetaflow finds it: the root given to
metadata(), else $METAFLOW_DATASTORE_SYSROOT_LOCAL, else the nearest
`.metaflow` directory in the working directory or a parent. The client
opens it read-only once per process, on first use (again if
$METAFLOW_DATASTORE_SYSROOT_LOCAL changes). Tag changes open it writable
for the time of the change.

Artifacts load lazily, on attribute access; numpy arrays and other
out-of-band buffers come back zero-copy and read-only (see artifacts.py).
Nothing heavy is imported before it is needed.
"""
import _thread
import os
from os import getpid as _getpid

from . import _lib as L
from .exceptions import (MetaflowException, MetaflowInternalError, MetaflowInvalidPathspec,
                         MetaflowNamespaceMismatch, MetaflowNotFound, MetaflowTaggingError)

__all__ = ["Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "MetaflowData",
           "MetaflowArtifacts", "namespace", "get_namespace", "default_namespace",
           "metadata", "get_metadata", "default_metadata"]

# include/metaflow/engine.h: mf_task_artifacts() flag listing '_' names.
_LIST_PRIVATE = 0x2
# Tags libmetaflow (and Metaflow) put on runs themselves, by prefix. The C
# API lists system tags before user tags without saying where they end.
_SYSTEM_TAG_PREFIXES = frozenset(("user", "runtime", "metaflow_version", "python_version",
                                  "date", "production", "project", "project_branch"))

# ------------------------------------------------------------ namespaces

_current_namespace = False  # False: not resolved yet (resolved on first use)


def _username():
    """The user libmetaflow records on runs: $METAFLOW_USER, $USER,
    $USERNAME, else the password database."""
    for var in ("METAFLOW_USER", "USER", "USERNAME"):
        user = os.environ.get(var)
        if user:
            return user
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "unknown"


def namespace(ns):
    """Switch the current namespace to `ns` (a tag such as "user:alice"),
    or to None to see every run. Returns the namespace set."""
    global _current_namespace
    if ns is not None and not isinstance(ns, str):
        raise MetaflowException("A namespace is a string (a tag) or None, not %r" % (ns,))
    _current_namespace = ns
    return get_namespace()


def get_namespace():
    """The current namespace (None: global)."""
    if _current_namespace is False:
        default_namespace()
    return _current_namespace


def default_namespace():
    """Reset the namespace to the default, "user:<username>", and return it."""
    global _current_namespace
    _current_namespace = "user:%s" % _username()
    return _current_namespace


# --------------------------------------------------------------- metadata

_metadata_root = None  # a root chosen with metadata(), else None


def metadata(ms):
    """Use the local datastore at `ms` ("local@<root>" or a path to the
    root). Returns get_metadata()."""
    global _metadata_root
    if not isinstance(ms, str) or not ms:
        raise MetaflowException("metadata() takes 'local@<datastore root>' or a path")
    kind, sep, where = ms.partition("@")
    if sep and kind in ("local", "fs"):
        ms = where
    elif sep or ms.startswith(("http://", "https://")):
        raise MetaflowException("Only the local datastore is supported, not '%s'" % ms)
    _metadata_root = os.path.abspath(ms)
    return get_metadata()


def get_metadata():
    """"local@<datastore root>" of the datastore the client reads."""
    try:
        return "local@%s" % _engine().root
    except MetaflowException:
        env = os.environ.get("METAFLOW_DATASTORE_SYSROOT_LOCAL")
        return "local@%s" % (_metadata_root or (env and os.path.join(env, ".metaflow"))
                             or os.path.join(os.getcwd(), ".metaflow"))


def default_metadata():
    """Forget the root set with metadata(); returns get_metadata()."""
    global _metadata_root
    _metadata_root = None
    return get_metadata()


# ----------------------------------------------------------------- engine


class _Engine:
    """A read-only mf_engine; freed when nothing uses it any more."""

    __slots__ = ("handle", "root", "pid", "free")

    def __init__(self, handle):
        self.handle = handle
        self.pid = os.getpid()
        self.free = L.lib.mf_engine_free
        self.root = L.dec(L.lib.mf_engine_root(handle))

    def __del__(self):
        h, self.handle = self.handle, None
        try:
            # Never touch an engine in a fork() child (libmetaflow's rule).
            if h and self.pid == _getpid():
                self.free(h)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


_engine_cache = None  # (key, _Engine)
_engine_lock = _thread.allocate_lock()


def _engine():
    global _engine_cache
    env = os.environ.get
    key = (_metadata_root, env("METAFLOW_DATASTORE_SYSROOT_LOCAL") or None,
           env("METAFLOW_DEFAULT_DATASTORE") or None, env("METAFLOW_DATASTORE_SYSROOT_S3") or None,
           os.getpid())
    cached = _engine_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _engine_lock:
        cached = _engine_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            handle = L.open_engine(root=_metadata_root, readonly=True)
        except L.MetaflowLibError as e:
            if e.code == L.MF_ENOTFOUND:
                raise MetaflowNotFound(
                    "No Metaflow datastore found (%s). Run a flow first, or point "
                    "METAFLOW_DATASTORE_SYSROOT_LOCAL at a datastore root." % e) from None
            raise MetaflowInternalError("Cannot open the Metaflow datastore: %s" % e) from None
        eng = _Engine(handle)
        # The old engine is freed once the objects made from it are gone.
        _engine_cache = (key, eng)
        return eng


def _error(rc, what, notfound=None):
    """The exception for a failed C call: MetaflowNotFound (with the text
    `notfound` when given) for a missing object or an invalid name."""
    msg = L.error_text()
    if rc in (L.MF_ENOTFOUND, L.MF_EINVAL):
        return MetaflowNotFound(notfound or "%s: %s" % (what, msg))
    return MetaflowInternalError("%s: %s" % (what, msg))


class _Handle:
    """An mf_run or mf_task handle, freed with the object holding it. Calls
    through it take `lock`: a handle is used by one thread at a time."""

    __slots__ = ("ptr", "free", "engine", "lock")

    def __init__(self, ptr, free, engine):
        self.ptr = ptr
        self.free = free
        self.engine = engine  # the engine outlives its handles
        self.lock = _thread.allocate_lock()

    def __del__(self):
        p, self.ptr = self.ptr, None
        try:
            if p and self.engine.pid == _getpid():
                self.free(p)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def stale(self):
        """True in a fork() child: the handle is the parent's."""
        return self.engine.pid != _getpid()


def _open_run(eng, flow, run_id):
    h = L.c_void_p()
    rc = L.lib.mf_run_open(L.byref(h), eng.handle, L.enc(flow), L.enc(run_id))
    if rc < 0:
        raise _error(rc, "opening run '%s/%s'" % (flow, run_id),
                     "Run('%s/%s') does not exist" % (flow, run_id))
    return _Handle(h, L.lib.mf_run_free, eng)


def _open_task(eng, pathspec, attempt=None):
    spec = pathspec if attempt is None else "%s/%d" % (pathspec, attempt)
    h = L.c_void_p()
    rc = L.lib.mf_task_open(L.byref(h), eng.handle, L.enc(spec))
    if rc < 0:
        raise _error(rc, "opening task '%s'" % spec,
                     "Task('%s'%s) does not exist"
                     % (pathspec, "" if attempt is None else ", attempt=%d" % attempt))
    return _Handle(h, L.lib.mf_task_free, eng)


def _strlist_call(fn, *args, what):
    out = L.c_void_p()
    rc = fn(*args, L.byref(out))
    if rc < 0:
        raise _error(rc, what)
    return L.strlist(out)


def _list_runs(eng, flow, tags=(), successful=False):
    """Run ids of `flow` carrying every tag, newest first ([] for a flow
    without runs)."""
    arr = L.cstr_array(tags)
    out = L.c_void_p()
    rc = L.lib.mf_run_list(L.byref(out), eng.handle, L.enc(flow), arr, len(tags),
                           L.MF_LIST_SUCCESSFUL if successful else 0)
    if rc < 0:
        if rc == L.MF_EINVAL:
            L.lib.mf_error_clear()
            return []
        raise _error(rc, "listing runs of '%s'" % flow)
    return L.strlist(out)


def _datetime(us):
    if not us:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(us / 1e6)


def _stringish(x):
    return isinstance(x, (str, bytes))


# ----------------------------------------------------- manifest timestamps
# Task start and finish times are in the task's manifest (documented in
# docs/datastore-format.md section 5) but have no getter in the C API: read
# the two fields from the file on a filesystem datastore. The keys before
# them are plain msgpack scalars.


def _mp_scalar(b, i):
    t = b[i]
    if t < 0x80:
        return t, i + 1
    if t >= 0xe0:
        return t - 0x100, i + 1
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i + 1:i + 1 + n].decode("utf-8", "replace"), i + 1 + n
    import struct

    if t in (0xd9, 0xda, 0xdb):
        fmt, w = {0xd9: (">B", 1), 0xda: (">H", 2), 0xdb: (">I", 4)}[t]
        n = struct.unpack_from(fmt, b, i + 1)[0]
        j = i + 1 + w
        if j + n > len(b):
            raise IndexError
        return b[j:j + n].decode("utf-8", "replace"), j + n
    if t == 0xc0:
        return None, i + 1
    if t in (0xc2, 0xc3):
        return t == 0xc3, i + 1
    fmts = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
            0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if t in fmts:
        fmt = fmts[t]
        return struct.unpack_from(fmt, b, i + 1)[0], i + 1 + struct.calcsize(fmt)
    raise ValueError("not a scalar")


def _manifest_times(b):
    """(started_us, finished_us) from the start of a manifest, or None."""
    try:
        t = b[0]
        if 0x80 <= t <= 0x8f:
            n, i = t & 0x0f, 1
        elif t == 0xde:
            n, i = (b[1] << 8) | b[2], 3
        else:
            return None
        got = {}
        for _ in range(n):
            k, i = _mp_scalar(b, i)
            v, i = _mp_scalar(b, i)
            if k in ("started_us", "finished_us"):
                got[k] = v
                if len(got) == 2:
                    return got["started_us"], got["finished_us"]
    except (IndexError, ValueError, TypeError):
        return None
    return None


def _task_times(root, flow, run_id, step, task_id, attempt):
    path = os.path.join(root, flow, run_id, step, task_id, "%d.manifest" % attempt)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            times = _manifest_times(head)
            if times is None and len(head) == 4096:
                times = _manifest_times(head + f.read())
            return times
    except OSError:
        return None


# ------------------------------------------------------------ the objects

_CLASSES = {}


class MetaflowObject:
    """Base of Flow, Run, Step, Task and DataArtifact.

    Attributes: id, pathspec, path_components, parent, tags, user_tags,
    system_tags (those of the run the object belongs to), created_at,
    origin_pathspec (the object a resumed run cloned this one from)."""

    _NAME = "base"
    _PARENT_CLASS = None
    _CHILD_CLASS = None
    _DEPTH = 0

    def _setup(self, pathspec, attempt, namespace_check, current_namespace):
        if not isinstance(pathspec, str) or not pathspec:
            raise MetaflowInvalidPathspec("Expects %s" % self._EXPECTS)
        ids = pathspec.split("/")
        if len(ids) != self._DEPTH or not all(ids):
            raise MetaflowInvalidPathspec("Expects %s" % self._EXPECTS)
        if attempt is not None:
            if self._NAME not in ("task", "artifact"):
                raise MetaflowNotFound("Attempts can only be specified for Task or DataArtifact")
            try:
                attempt = int(attempt)
            except (TypeError, ValueError):
                raise MetaflowNotFound("Attempt can only be an integer") from None
            if attempt < 0:
                raise MetaflowNotFound("Attempt can only be non-negative")
        self._ids = ids
        self._pathspec = pathspec
        self.id = ids[-1]
        self._attempt = attempt
        self._current_namespace = current_namespace or get_namespace()
        self._namespace_check = bool(namespace_check) and self._current_namespace is not None

    def _child_kwargs(self):
        return {"_namespace_check": self._namespace_check,
                "_current_namespace": self._current_namespace if self._namespace_check
                else None}

    @property
    def pathspec(self):
        return self._pathspec

    @property
    def path_components(self):
        return list(self._ids)

    @property
    def parent(self):
        if self._PARENT_CLASS is None:
            return None
        p = self.__dict__.get("_parent")
        if p is None:
            cls = _CLASSES[self._PARENT_CLASS]
            attempt = self._attempt if self._NAME == "artifact" else None
            p = cls("/".join(self._ids[:-1]), attempt=attempt, _namespace_check=False)
            self._parent = p
        return p

    def is_in_namespace(self):
        """Whether the object is in the current namespace (always True for
        the global namespace)."""
        return self._is_in_namespace(get_namespace())

    def _is_in_namespace(self, ns):
        return ns is None or ns in self.tags

    def _check_namespace(self):
        if self._namespace_check and not self._is_in_namespace(self._current_namespace):
            raise MetaflowNamespaceMismatch(self._current_namespace)

    def _filtered_children(self, *tags):
        for child in self:
            if all(t in child.tags for t in tags):
                yield child

    def __contains__(self, id):
        try:
            self[id]
        except (KeyError, MetaflowNotFound):
            return False
        return True

    def _ipython_key_completions_(self):
        return [child.id for child in self]

    def __str__(self):
        if self._attempt is not None:
            return "%s('%s', attempt=%d)" % (type(self).__name__, self.pathspec, self._attempt)
        return "%s('%s')" % (type(self).__name__, self.pathspec)

    __repr__ = __str__

    # Pickling: the pathspec and namespace state; reopened on load.
    def __getstate__(self):
        return {"version": "libmetaflow-1",
                "data": [self.pathspec, self._attempt, self._current_namespace,
                         self._namespace_check]}

    def __setstate__(self, state):
        data = state.get("data") if isinstance(state, dict) else None
        if not data:
            type(self).__init__(self, state.get("_pathspec"), attempt=state.get("_attempt"),
                                _namespace_check=False)
            return
        if len(data) == 5:  # Metaflow 2.12.27+: metadata string in the middle
            data = [data[0], data[1], data[3], data[4]]
        elif len(data) == 3:  # Metaflow 2.8.4
            data = [data[0], data[1], None, data[2]]
        pathspec, attempt, ns, check = data
        type(self).__init__(self, pathspec, attempt=attempt, _namespace_check=check,
                            _current_namespace=ns)


# ----------------------------------------------------------------- Flow


class Flow(MetaflowObject):
    """All runs of a flow. `Flow('Name')`; iterating yields its runs in the
    current namespace, newest first.

    Attributes: latest_run, latest_successful_run; runs(*tags)."""

    _NAME = "flow"
    _CHILD_CLASS = "run"
    _DEPTH = 1
    _EXPECTS = "Flow('FlowName')"

    def __init__(self, pathspec=None, attempt=None, _namespace_check=True,
                 _current_namespace=None, **_kw):
        self._setup(pathspec, attempt, _namespace_check, _current_namespace)
        eng = _engine()
        # A flow is in a namespace when it has a run there.
        if self._namespace_check and _list_runs(eng, self.id, [self._current_namespace]):
            return
        if not _list_runs(eng, self.id):
            raise MetaflowNotFound("Flow('%s') does not exist" % self.id)
        if self._namespace_check:
            raise MetaflowNamespaceMismatch(self._current_namespace)

    def _is_in_namespace(self, ns):
        return ns is None or bool(_list_runs(_engine(), self.id, [ns]))

    @property
    def tags(self):
        return frozenset()

    system_tags = user_tags = tags

    @property
    def created_at(self):
        ids = _list_runs(_engine(), self.id)
        return Run("%s/%s" % (self.id, ids[-1]), _namespace_check=False).created_at if ids \
            else None

    @property
    def origin_pathspec(self):
        return None

    def _run_ids(self, tags=(), successful=False):
        tags = list(tags)
        if self._namespace_check:
            tags.insert(0, self._current_namespace)
        return _list_runs(_engine(), self.id, tags, successful)

    def _run(self, run_id):
        return Run("%s/%s" % (self.id, run_id), _checked=True, _parent=self,
                   **self._child_kwargs())

    @property
    def latest_run(self):
        """The newest run in the namespace (running, finished or not), or None."""
        ids = self._run_ids()
        return self._run(ids[0]) if ids else None

    @property
    def latest_successful_run(self):
        """The newest run in the namespace that succeeded, or None."""
        ids = self._run_ids(successful=True)
        return self._run(ids[0]) if ids else None

    def runs(self, *tags):
        """The runs in the namespace carrying every tag in `tags`, newest first."""
        for run_id in self._run_ids(tags):
            yield self._run(run_id)

    def __iter__(self):
        return self.runs()

    def __getitem__(self, run_id):
        """The run `run_id`; KeyError if there is none,
        MetaflowNamespaceMismatch if it is outside the namespace."""
        try:
            return Run("%s/%s" % (self.id, run_id), _parent=self, **self._child_kwargs())
        except (MetaflowNotFound, MetaflowInvalidPathspec):
            raise KeyError(run_id) from None

    def __contains__(self, run_id):
        try:
            Run("%s/%s" % (self.id, run_id), _namespace_check=False)
        except (MetaflowNotFound, MetaflowInvalidPathspec):
            return False
        return True


# ------------------------------------------------------------------ Run


class Run(MetaflowObject):
    """One run of a flow: `Run('Flow/123')`. Iterating yields its steps,
    the latest first; `run['start']` is a Step.

    Attributes: status ("running", "succeeded", "failed", "crashed"),
    successful, finished, data (the end task's), end_task, created_at,
    finished_at, tags, user_tags, system_tags, origin_pathspec, code."""

    _NAME = "run"
    _PARENT_CLASS = "flow"
    _CHILD_CLASS = "step"
    _DEPTH = 2
    _EXPECTS = "Run('FlowName/RunID')"

    def __init__(self, pathspec=None, attempt=None, _namespace_check=True,
                 _current_namespace=None, _checked=False, _parent=None, **_kw):
        self._setup(pathspec, attempt, _namespace_check, _current_namespace)
        self._h = None
        self._tag_cache = None
        if _parent is not None:
            self._parent = _parent
        if not _checked:
            self._open()
            self._check_namespace()

    def _open(self):
        h = self._h
        if h is None or h.stale():
            h = _open_run(_engine(), self._ids[0], self.id)
            p = h.ptr
            self._user = L.dec(L.lib.mf_run_user(p))
            self._origin = L.dec(L.lib.mf_run_origin(p))
            self._created_us = L.lib.mf_run_created_at(p)
            self._h = h
        return h

    def _refresh(self):
        """Re-read the run record; returns mf_run_status."""
        h = self._open()
        with h.lock:
            rc = L.lib.mf_run_status_get(h.ptr)
            if rc < 0:
                raise _error(rc, "reading run '%s'" % self.pathspec)
            self._finished_us = L.lib.mf_run_finished_at(h.ptr)
        return rc

    def _read_tags(self):
        h = self._open()
        with h.lock:
            tags = _strlist_call(L.lib.mf_run_tags, h.ptr, what="tags of '%s'" % self.pathspec)
        nsys = 0
        while nsys < len(tags) and tags[nsys].partition(":")[0] in _SYSTEM_TAG_PREFIXES:
            nsys += 1
        self._tag_cache = (frozenset(tags[:nsys]), frozenset(tags[nsys:]))
        return self._tag_cache

    def _tags(self):
        return self._tag_cache or self._read_tags()

    @property
    def tags(self):
        s, u = self._tags()
        return s | u

    @property
    def system_tags(self):
        return self._tags()[0]

    @property
    def user_tags(self):
        return self._tags()[1]

    @property
    def user(self):
        """Who ran it (libmetaflow)."""
        self._open()
        return self._user

    @property
    def status(self):
        """"running", "succeeded", "failed" or "crashed" (the process
        running it died before finishing it)."""
        return L.RUN_STATUS.get(self._refresh(), "crashed")

    @property
    def successful(self):
        """True when the run finished and succeeded."""
        return self._refresh() == L.MF_RUN_SUCCEEDED

    @property
    def finished(self):
        """True when the run's end task completed (Metaflow's meaning: a
        run that failed before its end step is not finished; see status)."""
        end = self.end_task
        return end is not None and end.finished

    @property
    def created_at(self):
        self._open()
        return _datetime(self._created_us)

    @property
    def finished_at(self):
        """When the run finished, or None while it runs (or if it crashed)."""
        self._refresh()
        return _datetime(self._finished_us)

    @property
    def origin_pathspec(self):
        """'Flow/<run>' of the run this one resumed, or None."""
        self._open()
        return "%s/%s" % (self._ids[0], self._origin) if self._origin else None

    @property
    def code(self):
        return None

    @property
    def trigger(self):
        return None

    def _step_names(self):
        h = self._open()
        with h.lock:
            return _strlist_call(L.lib.mf_run_steps, h.ptr, what="steps of '%s'" % self.pathspec)

    def _step(self, name):
        return Step("%s/%s" % (self.pathspec, name), _checked=True, _parent=self,
                    **self._child_kwargs())

    def steps(self, *tags):
        """The run's steps (all carry the run's tags), the latest first."""
        return self._filtered_children(*tags)

    def __iter__(self):
        names = [n for n in self._step_names() if not n.startswith("_")]
        for name in reversed(names):
            yield self._step(name)

    def __getitem__(self, name):
        """The step `name`; KeyError if the run has no task of it."""
        if not isinstance(name, str) or name not in self._step_names():
            raise KeyError(name)
        return self._step(name)

    @property
    def end_task(self):
        """The task of the end step, or None if it has not run."""
        try:
            return self["end"].task
        except KeyError:
            return None

    @property
    def data(self):
        """The end task's artifacts (MetaflowData), or None."""
        end = self.end_task
        return end.data if end is not None else None

    # -------------------------------------------------------------- tags

    def add_tag(self, tag):
        """Add a user tag (a tag that is already a system tag is not added)."""
        return self.replace_tags([], [tag] if _stringish(tag) else tag)

    def add_tags(self, tags):
        return self.replace_tags([], tags)

    def remove_tag(self, tag):
        """Remove a user tag (removing a system tag is an error; a missing
        tag is ignored)."""
        return self.replace_tags([tag] if _stringish(tag) else tag, [])

    def remove_tags(self, tags):
        return self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove, tag_to_add):
        """Remove one tag and add another, atomically (removal first)."""
        return self.replace_tags([tag_to_remove] if _stringish(tag_to_remove) else tag_to_remove,
                                 [tag_to_add] if _stringish(tag_to_add) else tag_to_add)

    def replace_tags(self, tags_to_remove, tags_to_add):
        remove = self._tag_list(tags_to_remove)
        add = self._tag_list(tags_to_add)
        system = self._read_tags()[0]
        refused = sorted(t for t in remove if t in system)
        if refused:
            raise MetaflowTaggingError("Cannot remove system tag(s) %s of run '%s'"
                                       % (", ".join(refused), self.pathspec))
        add = [t for t in add if t not in system]
        if remove or add:
            self._update_tags(add, remove)
        self._read_tags()

    @staticmethod
    def _tag_list(tags):
        if tags is None or _stringish(tags):
            raise MetaflowTaggingError("Tags must be given as an iterable of strings")
        out = []
        for t in tags:
            if isinstance(t, bytes):
                t = t.decode("utf-8")
            if not isinstance(t, str) or not t:
                raise MetaflowTaggingError("Tags must be non-empty strings, not %r" % (t,))
            out.append(t)
        return out

    def _update_tags(self, add, remove):
        root = self._open().engine.root
        try:
            eng = L.open_engine(root=root, readonly=False)
        except L.MetaflowLibError as e:
            raise MetaflowTaggingError("Cannot change the tags of '%s': the datastore is not "
                                       "writable (%s)" % (self.pathspec, e)) from None
        run = L.c_void_p()
        try:
            rc = L.lib.mf_run_open(L.byref(run), eng, L.enc(self._ids[0]), L.enc(self.id))
            if rc == 0:
                rc = L.lib.mf_run_tags_update(run, L.cstr_array(add), len(add),
                                              L.cstr_array(remove), len(remove))
            if rc < 0:
                raise MetaflowTaggingError("Cannot change the tags of '%s': %s"
                                           % (self.pathspec, L.error_text()))
        finally:
            L.lib.mf_run_free(run)
            L.lib.mf_engine_free(eng)


# ----------------------------------------------------------------- Step


class Step(MetaflowObject):
    """A step of a run: `Step('Flow/123/start')`. Iterating yields its tasks
    (several for a foreach), the latest first; `step['1']` is a Task.

    Attributes: task (a task of the step), created_at, finished_at."""

    _NAME = "step"
    _PARENT_CLASS = "run"
    _CHILD_CLASS = "task"
    _DEPTH = 3
    _EXPECTS = "Step('FlowName/RunID/StepName')"

    def __init__(self, pathspec=None, attempt=None, _namespace_check=True,
                 _current_namespace=None, _checked=False, _parent=None, **_kw):
        self._setup(pathspec, attempt, _namespace_check, _current_namespace)
        if _parent is None:
            _parent = Run("/".join(self._ids[:2]), _namespace_check=False)
        self._parent = _parent
        if not _checked:
            if self.id not in _parent._step_names():
                raise MetaflowNotFound("Step('%s') does not exist" % self.pathspec)
            self._check_namespace()

    @property
    def _run(self):
        return self._parent

    @property
    def tags(self):
        return self._parent.tags

    @property
    def system_tags(self):
        return self._parent.system_tags

    @property
    def user_tags(self):
        return self._parent.user_tags

    def _task_ids(self):
        h = self._parent._open()
        with h.lock:
            return _strlist_call(L.lib.mf_run_tasks, h.ptr, L.enc(self.id),
                                 what="tasks of '%s'" % self.pathspec)

    def _task(self, task_id):
        return Task("%s/%s" % (self.pathspec, task_id), _checked=True, _parent=self,
                    **self._child_kwargs())

    def __iter__(self):
        for task_id in reversed(self._task_ids()):
            yield self._task(task_id)

    def tasks(self, *tags):
        """The step's tasks, the latest first (`tags` filter like Metaflow's)."""
        return self._filtered_children(*tags)

    @property
    def task(self):
        """A task of the step (the only one, outside a foreach), or None."""
        for t in self:
            return t
        return None

    def __getitem__(self, task_id):
        """The task `task_id`; KeyError if the step has none such."""
        try:
            task = self._task(task_id)
            task._open()
        except (MetaflowNotFound, MetaflowInvalidPathspec):
            raise KeyError(task_id) from None
        return task

    @property
    def created_at(self):
        times = [t.created_at for t in self]
        times = [t for t in times if t is not None]
        return min(times) if times else self._parent.created_at

    @property
    def finished_at(self):
        """When the last task of the step finished (None if it has none)."""
        times = [t.finished_at for t in self]
        times = [t for t in times if t is not None]
        return max(times) if times else None

    @property
    def origin_pathspec(self):
        origin = self._parent.origin_pathspec
        return "%s/%s" % (origin, self.id) if origin else None

    @property
    def environment_info(self):
        return None


# ----------------------------------------------------------------- Task


class MetaflowData:
    """The artifacts of a task by attribute: `task.data.x` loads artifact x
    when accessed. `'x' in data` tests for one; dir() lists them."""

    def __init__(self, task):
        object.__setattr__(self, "_task", task)

    def __getattr__(self, name):
        task = self.__dict__.get("_task")
        if task is None or name.startswith("__"):
            raise AttributeError(name)
        try:
            return task._load(name)
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, name):
        return name in self._task._names()

    def __dir__(self):
        return self._task._names() + list(object.__dir__(self))

    def __str__(self):
        return "<MetaflowData: %s>" % ", ".join(self._task._names())

    __repr__ = __str__


class MetaflowArtifacts(tuple):
    """The DataArtifacts of a task: a tuple with each also reachable by
    attribute (`task.artifacts.x`)."""

    def __new__(cls, artifacts):
        self = tuple.__new__(cls, artifacts)
        self._by_name = {a.id: a for a in self}
        return self

    def __getattr__(self, name):
        try:
            return self.__dict__["_by_name"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self):
        return list(self._by_name) + list(object.__dir__(self))

    def _asdict(self):
        return dict(self._by_name)

    @property
    def _fields(self):
        return tuple(self._by_name)

    def __repr__(self):
        return "MetaflowArtifacts(%s)" % ", ".join("%s=%r" % (a.id, a) for a in self)


class Task(MetaflowObject):
    """One execution of a step: `Task('Flow/123/start/1')` (its latest
    attempt) or `Task(..., attempt=0)`. Iterating yields its DataArtifacts;
    `task['x']` is one, `'x' in task` tests for one.

    Attributes: data, artifacts, successful, finished, exception, stdout,
    stderr, index, current_attempt, created_at, finished_at,
    origin_pathspec, metadata_dict, parent_tasks."""

    _NAME = "task"
    _PARENT_CLASS = "step"
    _CHILD_CLASS = "artifact"
    _DEPTH = 4
    _EXPECTS = "Task('FlowName/RunID/StepName/TaskID')"

    def __init__(self, pathspec=None, attempt=None, _namespace_check=True,
                 _current_namespace=None, _checked=False, _parent=None, **_kw):
        self._setup(pathspec, attempt, _namespace_check, _current_namespace)
        self._h = None
        self._times = False
        if _parent is not None:
            self._parent = _parent
        if not _checked:
            self._run._open()  # MetaflowNotFound when the run does not exist
            self._open()
            self._check_namespace()

    @property
    def _run(self):
        p = self.__dict__.get("_parent")
        if p is not None:
            return p._run
        run = self.__dict__.get("_run_obj")
        if run is None:
            run = Run("/".join(self._ids[:2]), _namespace_check=False)
            self._run_obj = run
        return run

    def _open(self):
        h = self._h
        if h is None or h.stale():
            h = self._h = _open_task(_engine(), self._pathspec, self._attempt)
        return h

    @property
    def tags(self):
        return self._run.tags

    @property
    def system_tags(self):
        return self._run.system_tags

    @property
    def user_tags(self):
        return self._run.user_tags

    # ---------------------------------------------------------- artifacts

    def _names(self, private=False):
        h = self._open()
        with h.lock:
            return _strlist_call(L.lib.mf_task_artifacts, h.ptr,
                                 _LIST_PRIVATE if private else 0,
                                 what="artifacts of '%s'" % self.pathspec)

    def _artifact_handle(self, name):
        """An mf_artifact handle (the caller frees it), or None."""
        from . import artifacts

        h = self._open()
        with h.lock:
            return artifacts.open_artifact(h.ptr, name)

    def _load(self, name):
        """The value of artifact `name`; KeyError if the task has none."""
        from . import artifacts

        a = self._artifact_handle(name)
        if a is None:
            raise KeyError(name)
        return artifacts.decode(a)

    def _artifact_info(self, name):
        a = self._artifact_handle(name)
        if a is None:
            return None
        try:
            n = L.lib.mf_artifact_part_count(a)
            size = sum(L.lib.mf_artifact_part_size(a, i) for i in range(n))
            return (L.dec(L.lib.mf_artifact_key(a)), size, L.dec(L.lib.mf_artifact_encoding(a)))
        finally:
            L.lib.mf_artifact_free(a)

    def _artifact(self, name, info):
        return DataArtifact("%s/%s" % (self.pathspec, name), attempt=self._attempt,
                            _checked=True, _parent=self, _info=info, **self._child_kwargs())

    def __iter__(self):
        for name in self._names():
            info = self._artifact_info(name)
            if info is not None:
                yield self._artifact(name, info)

    def __getitem__(self, name):
        """The DataArtifact `name` (private '_' names too); KeyError if none."""
        info = self._artifact_info(name) if isinstance(name, str) else None
        if info is None:
            raise KeyError(name)
        return self._artifact(name, info)

    def __contains__(self, name):
        return isinstance(name, str) and self._artifact_info(name) is not None

    @property
    def data(self):
        """The task's artifacts by attribute; each loads when accessed."""
        return MetaflowData(self)

    @property
    def artifacts(self):
        """The task's DataArtifacts (MetaflowArtifacts: `artifacts.x`)."""
        return MetaflowArtifacts(list(self))

    # -------------------------------------------------------------- state

    def _status(self):
        h = self._open()
        with h.lock:
            return L.lib.mf_task_status_get(h.ptr)

    @property
    def successful(self):
        """True when the attempt's code succeeded (not when @catch caught
        its failure)."""
        return self._status() == L.MF_TASK_SUCCEEDED and self.exception is None

    @property
    def finished(self):
        """True when the attempt completed: it succeeded, or @catch caught
        its failure. A failed attempt is not finished (Metaflow's meaning:
        its `_task_ok` is False)."""
        return self._status() == L.MF_TASK_SUCCEEDED

    @property
    def exception(self):
        """Why the task failed, or failed before @catch caught it (text:
        exit code or signal, the step's message, log tail), or None."""
        h = self._open()
        b = L.mf_buf()
        with h.lock:
            rc = L.lib.mf_task_failure(h.ptr, L.byref(b))
        if rc == L.MF_ENOTFOUND:
            L.lib.mf_error_clear()
            L.lib.mf_buf_dispose(L.byref(b))
            return None
        if rc < 0:
            L.lib.mf_buf_dispose(L.byref(b))
            raise _error(rc, "failure of '%s'" % self.pathspec)
        return L.buf_bytes(b).decode("utf-8", "replace")

    @property
    def current_attempt(self):
        """The attempt this object reads (0 for the first try)."""
        if self._attempt is not None:
            return self._attempt
        h = self._open()
        return int(L.lib.mf_task_attempt(h.ptr))

    def foreach_stack(self):
        """The foreach stack, outermost first: (index, num_splits, value)
        tuples; [] outside a foreach."""
        h = self._open()
        with h.lock:
            p = h.ptr
            return [(int(L.lib.mf_task_foreach_index(p, i)),
                     int(L.lib.mf_task_foreach_nsplits(p, i)),
                     L.dec(L.lib.mf_task_foreach_value(p, i)))
                    for i in range(L.lib.mf_task_foreach_depth(p))]

    @property
    def index(self):
        """The index of the task in its innermost foreach, or None."""
        h = self._open()
        with h.lock:
            depth = L.lib.mf_task_foreach_depth(h.ptr)
            return int(L.lib.mf_task_foreach_index(h.ptr, depth - 1)) if depth else None

    def _origin(self):
        h = self._open()
        with h.lock:
            return L.dec(L.lib.mf_task_origin(h.ptr))

    @property
    def origin_pathspec(self):
        """'Flow/run/step/task' of the task a resume cloned this one from, or None."""
        origin = self._origin()
        return "%s/%s" % (self._ids[0], origin) if origin else None

    @property
    def metadata_dict(self):
        """A few facts as Metaflow's metadata names them: attempt, and for a
        cloned task origin-run-id and origin-task-id."""
        d = {"attempt": str(self.current_attempt)}
        origin = self._origin()
        if origin:
            run_id, _, rest = origin.partition("/")
            d["origin-run-id"] = run_id
            d["origin-task-id"] = rest.rpartition("/")[2]
        return d

    @property
    def metadata(self):
        from collections import namedtuple

        md = namedtuple("Metadata", ["name", "value", "created_at", "type", "task"])
        at = self.finished_at
        return [md(k, v, at, k, self) for k, v in self.metadata_dict.items()]

    @property
    def runtime_name(self):
        for t in self.tags:
            if t.startswith("runtime:"):
                return t.split(":", 1)[1]
        return None

    @property
    def code(self):
        return None

    @property
    def environment_info(self):
        return None

    def _manifest_times(self):
        if self._times is False:
            h = self._open()
            with h.lock:
                attempt = int(L.lib.mf_task_attempt(h.ptr))
            f, r, s, t = self._ids
            self._times = _task_times(h.engine.root, f, r, s, t, attempt)
        return self._times

    @property
    def created_at(self):
        """When the task started (None if unknown)."""
        times = self._manifest_times()
        return _datetime(times[0]) if times else None

    @property
    def finished_at(self):
        """When the task finished (None if unknown)."""
        times = self._manifest_times()
        return _datetime(times[1]) if times else None

    # ------------------------------------------------------------ parents

    @property
    def parent_task_pathspecs(self):
        """Pathspecs of the tasks this one took its inputs from."""
        h = self._open()
        with h.lock:
            inputs = [L.dec(L.lib.mf_task_input(h.ptr, i))
                      for i in range(L.lib.mf_task_input_count(h.ptr))]
        for p in inputs:
            yield "%s/%s" % (self._ids[0], p)

    @property
    def parent_tasks(self):
        for p in self.parent_task_pathspecs:
            yield Task(p, _namespace_check=False)

    # --------------------------------------------------------------- logs

    def _log(self, stream, flags=0):
        code = {"stdout": L.MF_LOG_STDOUT, "stderr": L.MF_LOG_STDERR}.get(stream)
        if code is None:
            raise MetaflowException("A log stream is 'stdout' or 'stderr', not %r" % (stream,))
        h = self._open()
        b = L.mf_buf()
        with h.lock:
            rc = L.lib.mf_task_log_read(h.ptr, code, flags, L.byref(b))
        if rc < 0:
            L.lib.mf_buf_dispose(L.byref(b))
            raise _error(rc, "%s of '%s'" % (stream, self.pathspec))
        return L.buf_bytes(b)

    def _load_log(self, stream):
        text = self._log(stream).decode("utf-8", "replace")
        # Lines are stored without their newlines; Metaflow ends each with one.
        return text + "\n" if text else ""

    @property
    def stdout(self):
        """The task's standard output (of this attempt)."""
        return self._load_log("stdout")

    @property
    def stderr(self):
        """The task's standard error (of this attempt)."""
        return self._load_log("stderr")

    @property
    def stdout_size(self):
        return len(self._load_log("stdout").encode("utf-8"))

    @property
    def stderr_size(self):
        return len(self._load_log("stderr").encode("utf-8"))

    def loglines(self, stream, as_unicode=True, meta_dict=None):
        """(UTC datetime, line) pairs of a stream, in order."""
        from datetime import datetime

        raw = self._log(stream, L.MF_LOG_TIMESTAMPS)
        if not raw:
            return
        for line in raw.split(b"\n"):
            stamp, _, text = line.partition(b" ")
            try:
                when = datetime.strptime(stamp.decode("ascii"), "%Y-%m-%dT%H:%M:%S.%fZ")
            except ValueError:
                when, text = None, line
            yield when, text.decode("utf-8", "replace") if as_unicode else text


# --------------------------------------------------------- DataArtifact


class DataArtifact(MetaflowObject):
    """One artifact of a task: `DataArtifact('Flow/123/start/1/x')`.

    Attributes: data (loaded on access), sha (content key), size (bytes
    stored, out-of-band buffers included), encoding, created_at,
    finished_at."""

    _NAME = "artifact"
    _PARENT_CLASS = "task"
    _DEPTH = 5
    _EXPECTS = "DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"

    def __init__(self, pathspec=None, attempt=None, _namespace_check=True,
                 _current_namespace=None, _checked=False, _parent=None, _info=None, **_kw):
        self._setup(pathspec, attempt, _namespace_check, _current_namespace)
        if _parent is None:
            _parent = Task("/".join(self._ids[:4]), attempt=self._attempt,
                           _namespace_check=False)
        self._parent = _parent
        if _info is None:
            _info = _parent._artifact_info(self.id)
            if _info is None:
                raise MetaflowNotFound("DataArtifact('%s') does not exist" % self.pathspec)
        self._info = _info
        if not _checked:
            self._check_namespace()

    @property
    def tags(self):
        return self._parent.tags

    @property
    def system_tags(self):
        return self._parent.system_tags

    @property
    def user_tags(self):
        return self._parent.user_tags

    @property
    def data(self):
        """The artifact's value (loaded now; arrays read-only, zero-copy)."""
        return self._parent._load(self.id)

    @property
    def sha(self):
        """The artifact's content key (hex SHA-256 of its main part)."""
        return self._info[0]

    @property
    def size(self):
        """Bytes of the stored value, out-of-band buffers included."""
        return self._info[1]

    @property
    def encoding(self):
        return self._info[2]

    @property
    def created_at(self):
        return self._parent.finished_at

    @property
    def finished_at(self):
        return self._parent.finished_at

    @property
    def origin_pathspec(self):
        origin = self._parent.origin_pathspec
        return "%s/%s" % (origin, self.id) if origin else None


# ------------------------------------------------------------- Metaflow


class Metaflow:
    """Every flow: `Metaflow().flows` lists those with a run in the current
    namespace; `Metaflow()['Name']` is Flow('Name')."""

    def __init__(self, _current_metadata=None):
        if _current_metadata:
            metadata(_current_metadata)

    @property
    def flows(self):
        return list(self)

    def __iter__(self):
        eng = _engine()
        h = L.c_void_p()
        rc = L.lib.mf_flow_list(L.byref(h), eng.handle)
        if rc < 0:
            raise _error(rc, "listing flows")
        for name in L.strlist(h):
            try:
                yield Flow(name)
            except (MetaflowNamespaceMismatch, MetaflowNotFound):
                continue

    def __getitem__(self, name):
        return Flow(name)

    def __str__(self):
        return "Metaflow()"

    __repr__ = __str__

    def _ipython_key_completions_(self):
        return [f.id for f in self]


_CLASSES.update(flow=Flow, run=Run, step=Step, task=Task, artifact=DataArtifact)
