"""FlowSpec and @step: the Metaflow flow API.

Instantiating a flow class (`MyFlow()` under `if __name__ == "__main__"`)
runs its command line (metaflow/cli.py). Inside a task, attributes are the
task's artifacts: assigning `self.x` makes an artifact, reading one that the
task did not set loads it, lazily, from the task's input.
"""
import sys
import types

from . import _lib as L
from . import artifacts
from .exceptions import MetaflowException

_INTERNAL = frozenset(("_mf",))
_IMMUTABLE = (int, float, bool, str, bytes, tuple, frozenset, complex, type(None), range)


class InvalidNextException(MetaflowException):
    headline = "Invalid self.next() transition"


class MissingInMergeArtifactsException(MetaflowException):
    headline = "Missing artifacts in merge"

    def __init__(self, msg, unhandled):
        super().__init__(msg)
        self.artifact_names = unhandled


class UnhandledInMergeArtifactsException(MetaflowException):
    headline = "Unhandled artifacts in merge"

    def __init__(self, msg, unhandled):
        super().__init__(msg)
        self.artifact_names = unhandled


def step(f=None, *, start=False, end=False):
    """Mark a method of a FlowSpec as a step."""
    def mark(func):
        func.is_step = True
        func._mf_start = start
        func._mf_end = end
        return func
    if f is None:
        return mark
    return mark(f)


class _TaskState:
    """What a flow object knows while it runs as a task."""

    def __init__(self, task, engine, graph, step_name):
        self.task = task
        self.engine = engine
        self.graph = graph
        self.step = step_name
        self.parent = None          # the input task (non-join), opened lazily
        self.parent_tried = False
        self.params = None          # start task: the run's parameters
        self.assigned = set()
        self.loaded = set()
        self.next = None            # (targets, foreach, condition)
        self.inputs = None
        self.foreach_item = None
        self.handles = []           # opened input tasks, freed after the task

    def open_parent(self):
        if not self.parent_tried:
            self.parent_tried = True
            if L.lib.mf_task_input_count(self.task) == 1:
                h = L.c_void_p()
                L.check(L.lib.mf_task_input_open(L.byref(h), self.task, 0))
                self.parent = h
                self.handles.append(h)
        return self.parent

    def close(self):
        for h in self.handles:
            L.lib.mf_task_free(h)
        self.handles = []
        self.parent = None


class FlowSpec:
    """Subclass it, define @step methods from `start` to `end`, and call
    the class at the bottom of the file to get the command line."""

    _mf = None

    def __init__(self, use_cli=True):
        object.__setattr__(self, "_mf", None)
        if use_cli:
            from . import cli
            cli.main(self)

    # ---- artifacts

    def _mf_artifact(self, name):
        st = self._mf
        if st is None:
            raise AttributeError("'%s' is only available while the flow runs" % name)
        d = self.__dict__
        if name in d:
            return d[name]
        if st.params is not None and name in st.params:
            value = st.params[name]
        elif name in getattr(st, "merged_from", {}):
            value = artifacts.load(st.merged_from[name], name)
        else:
            parent = st.open_parent()
            if parent is None:
                raise AttributeError("Flow %s has no attribute '%s'"
                                     % (type(self).__name__, name))
            try:
                value = artifacts.load(parent, name)
            except KeyError:
                raise AttributeError("Flow %s has no attribute '%s'"
                                     % (type(self).__name__, name)) from None
        self.__dict__[name] = value  # a cache (a Parameter's __set__ refuses writes)
        st.loaded.add(name)
        return value

    def __getattr__(self, name):
        if name.startswith("__") or name in _INTERNAL:
            raise AttributeError(name)
        return self._mf_artifact(name)

    def __setattr__(self, name, value):
        if name in _INTERNAL:
            object.__setattr__(self, name, value)
            return
        cls_attr = getattr(type(self), name, None)
        if cls_attr is not None:
            if isinstance(cls_attr, property) or hasattr(cls_attr, "__set__"):
                object.__setattr__(self, name, value)  # property / Parameter decides
                return
            if not callable(cls_attr):
                raise AttributeError("'%s' is a constant of flow %s: a step cannot change it"
                                     % (name, type(self).__name__))
        object.__setattr__(self, name, value)
        if self._mf is not None:
            self._mf.assigned.add(name)
            self._mf.loaded.discard(name)

    def __delattr__(self, name):
        object.__delattr__(self, name)
        if self._mf is not None:
            self._mf.assigned.discard(name)

    # ---- what a step sees

    @property
    def name(self):
        return type(self).__name__

    @property
    def input(self):
        st = self._mf
        if st is None or not L.lib.mf_task_foreach_depth(st.task):
            return None
        return st.foreach_item

    @property
    def index(self):
        st = self._mf
        return None if st is None else _foreach_index(st.task)

    def foreach_stack(self):
        st = self._mf
        return [] if st is None else _foreach_stack(st.task)

    def next(self, *targets, foreach=None, condition=None, num_parallel=None):
        st = self._mf
        if st is None:
            raise InvalidNextException("self.next() is only meaningful while a step runs")
        if st.next is not None:
            raise InvalidNextException("step '%s' called self.next() more than once" % st.step)
        if num_parallel:
            raise InvalidNextException("step '%s': num_parallel is not supported" % st.step)
        node = st.graph[st.step]
        by_attr = st.graph.by_attr
        if condition is not None:
            if len(targets) != 1 or not isinstance(targets[0], dict):
                raise InvalidNextException("step '%s': a switch is self.next({...}, "
                                           "condition='var')" % st.step)
            names = {k: by_attr.get(_step_name(v), _step_name(v))
                     for k, v in targets[0].items()}
            if names != node.switch_cases:
                raise InvalidNextException("step '%s': self.next() does not match the graph"
                                           % st.step)
        else:
            names = [by_attr.get(_step_name(t), _step_name(t)) for t in targets]
            if names != node.out_funcs or foreach != node.foreach_param:
                raise InvalidNextException(
                    "step '%s': self.next(%s%s) does not match the graph read from the "
                    "source (self.next(%s%s))" % (
                        st.step, ", ".join("self." + n for n in names),
                        ", foreach=%r" % foreach if foreach else "",
                        ", ".join("self." + n for n in node.out_funcs),
                        ", foreach=%r" % node.foreach_param if node.foreach_param else ""))
        st.next = (targets, foreach, condition)

    def merge_artifacts(self, inputs, exclude=None, include=None):
        """Take the artifacts of a join's inputs that agree (same content) and
        that this step did not set; conflicting ones must be set or excluded."""
        st = self._mf
        if st is None or st.inputs is None:
            raise MetaflowException("merge_artifacts() only works in a join step")
        exclude = set(exclude or ())
        include = set(include or ())
        if include and exclude:
            raise MetaflowException("merge_artifacts(): give include or exclude, not both")
        seen = {}       # name -> (key, input handle)
        conflicts = set()
        for inp in inputs:
            h = inp._mf_handle
            for n in artifacts.names(h, private=False):
                if n in exclude or (include and n not in include) or n in st.assigned:
                    continue
                info = artifacts.info(h, n)
                if n in seen and seen[n][0] != info[0]:
                    conflicts.add(n)
                seen.setdefault(n, (info[0], h))
        missing = include - set(seen) - st.assigned
        if missing:
            raise MissingInMergeArtifactsException(
                "merge_artifacts(): artifacts %s are in no input" % sorted(missing),
                sorted(missing))
        if conflicts:
            raise UnhandledInMergeArtifactsException(
                "step '%s' cannot merge artifacts %s: the inputs have different values; "
                "set them in the step or exclude them" % (st.step, sorted(conflicts)),
                sorted(conflicts))
        if not hasattr(st, "merged_from"):
            st.merged_from = {}
        for n, (key, h) in seen.items():
            L.check(L.lib.mf_task_put_ref(st.task, L.enc(n), h), "merging '%s'" % n)
            self.__dict__.pop(n, None)
            st.merged = getattr(st, "merged", set()) | {n}
            st.merged_from[n] = h  # read back from there, lazily


def _foreach_index(task):
    """Innermost foreach index of a task handle, or None outside a foreach."""
    d = L.lib.mf_task_foreach_depth(task)
    return L.lib.mf_task_foreach_index(task, d - 1) if d else None


def _foreach_stack(task):
    """[(index, number of splits, value text), ...], outermost first."""
    return [(L.lib.mf_task_foreach_index(task, i), L.lib.mf_task_foreach_nsplits(task, i),
             L.dec(L.lib.mf_task_foreach_value(task, i)))
            for i in range(L.lib.mf_task_foreach_depth(task))]


def _step_name(t):
    if isinstance(t, types.MethodType):
        return t.__func__.__name__
    if callable(t):
        return t.__name__
    raise InvalidNextException("self.next() takes steps (self.<step>), not %r" % (t,))


class _InputView:
    """One input of a join: its artifacts, read lazily."""

    def __init__(self, handle, flow_name):
        object.__setattr__(self, "_mf_handle", handle)
        object.__setattr__(self, "_mf_flow", flow_name)
        object.__setattr__(self, "_mf_cache", {})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cache = self._mf_cache
        if name not in cache:
            try:
                cache[name] = artifacts.load(self._mf_handle, name)
            except KeyError:
                raise AttributeError("input %s has no artifact '%s'"
                                     % (L.dec(L.lib.mf_task_pathspec(self._mf_handle)),
                                        name)) from None
        return cache[name]

    def __setattr__(self, name, value):
        raise AttributeError("inputs of a join are read-only")

    @property
    def index(self):
        return _foreach_index(self._mf_handle)

    def foreach_stack(self):
        return _foreach_stack(self._mf_handle)

    def __repr__(self):
        return "<input %s>" % L.dec(L.lib.mf_task_pathspec(self._mf_handle))


class Inputs:
    """The inputs of a join: indexable, iterable, and by step name
    (`inputs.train`) after a static split."""

    def __init__(self, views, steps):
        self._views = views
        self._by_step = dict(zip(steps, views))

    def __getitem__(self, i):
        return self._views[i]

    def __iter__(self):
        return iter(self._views)

    def __len__(self):
        return len(self._views)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._by_step[name]
        except KeyError:
            raise AttributeError("this join has no input from step '%s'" % name) from None


def _persistable(name, value):
    if name.startswith("__") or name in _INTERNAL:
        return False
    if isinstance(value, (types.FunctionType, types.MethodType, types.BuiltinFunctionType,
                          types.LambdaType, types.ModuleType, type)):
        return False
    return True


def _unchanged(value):
    """A loaded artifact that cannot have changed in place."""
    if isinstance(value, _IMMUTABLE):
        return True
    flags = getattr(value, "flags", None)  # numpy arrays loaded read-only (mapped)
    return flags is not None and getattr(flags, "writeable", True) is False


def persist(flow, st):
    """Store the task's artifacts: what it set, and what it loaded that may
    have changed in place. Inherited artifacts it did not touch pass on by
    reference in C, never re-serialized."""
    merged = getattr(st, "merged", set())
    for name, value in list(flow.__dict__.items()):
        if not _persistable(name, value) or (name in merged and name not in st.assigned):
            continue
        if name in st.loaded and name not in st.assigned and _unchanged(value):
            continue
        if st.params is not None and name in st.params and name not in st.assigned:
            continue
        artifacts.put(st.task, name, value)
    # Parameters are artifacts of every task: the start task stores them,
    # other steps inherit them, and a join takes them from its first input
    # by reference.
    if st.step == "start":
        for name, value in (st.params or {}).items():
            artifacts.put(st.task, name, value)
    elif st.inputs is not None and len(st.inputs):
        first = st.inputs[0]._mf_handle
        for name in st.params or {}:
            if name not in st.assigned:
                L.check(L.lib.mf_task_put_ref(st.task, L.enc(name), first),
                        "parameter '%s'" % name)


def _flow_main_module():
    return sys.modules.get("__main__")
