"""Running one step as a task, in the task's own process (started by the
runtime as `python flow.py step NAME ...`, or forked by the fork server).

The task comes from the MF_TASK_* environment (mf_task_from_env). The step
function runs; its artifacts are stored; the transition it took (foreach
count, switch case) is recorded; the task commits. An exception prints its
traceback on stderr and exits 1 without committing: the runtime records
the failure with the last lines of the log.
"""
import json
import os
import sys
import tempfile
import traceback

from . import _lib as L
from . import artifacts
from .current import current
from .flowspec import Inputs, _InputView, _TaskState, persist


def _short_repr(v):
    try:
        r = repr(v)
    except Exception:  # noqa: BLE001 - a value whose repr fails still runs
        r = "<%s>" % type(v).__name__
    return r[:64]


def _run_params(engine, flow, run_id):
    run = L.c_void_p()
    L.check(L.lib.mf_run_open(L.byref(run), engine, L.enc(flow), L.enc(run_id)))
    try:
        names = L.c_void_p()
        L.check(L.lib.mf_run_params(run, L.byref(names)))
        out = {}
        for n in L.strlist(names):
            b = L.mf_buf()
            L.check(L.lib.mf_run_param(run, L.enc(n), L.byref(b)))
            out[n] = json.loads(L.buf_bytes(b).decode("utf-8"))
        return out, L.dec(L.lib.mf_run_user(run)), L.dec(L.lib.mf_run_origin(run))
    finally:
        L.lib.mf_run_free(run)


def _fail(task, text):
    """Commit the attempt as failed with its reason; exit code 1."""
    sys.stdout.flush()
    sys.stderr.flush()
    if L.lib.mf_task_fail(task, L.enc(text)) != L.MF_OK:
        sys.stderr.write("metaflow: recording the failure: %s\n" % L.error_text())
    return 1


def execute(flow_cls, graph, step_name, tags=()):
    """Run `step_name` as the task the environment describes; returns the
    process exit code."""
    task, engine = L.c_void_p(), L.c_void_p()
    rc = L.lib.mf_task_from_env(L.byref(task), L.byref(engine))
    if rc != L.MF_OK:
        sys.stderr.write("metaflow: cannot open the task: %s\n" % L.error_text())
        return 1
    st = None
    try:
        spec = os.environ.get("MF_TASK", "")
        flow_name, run_id, step, task_id, attempt = spec.split("/")
        if step != step_name:
            sys.stderr.write("metaflow: the task is of step '%s', not '%s'\n"
                             % (step, step_name))
            return 1
        node = graph[step_name]
        flow = flow_cls.__new__(flow_cls)
        object.__setattr__(flow, "_mf", None)
        st = _TaskState(task, engine, graph, step_name)
        params, user, origin = _run_params(engine, flow_name, run_id)
        st.params = params
        current._reset()
        current._set(flow_name=flow_name, run_id=run_id, step_name=step_name, task_id=task_id,
                     retry_count=int(attempt), origin_run_id=origin, username=user,
                     namespace="user:%s" % user, tags=frozenset(tags), is_running_flow=True,
                     tempdir=tempfile.gettempdir(), parameter_names=list(params))
        object.__setattr__(flow, "_mf", st)

        if node.is_join:
            views, steps = [], []
            for i in range(L.lib.mf_task_input_count(task)):
                h = L.c_void_p()
                L.check(L.lib.mf_task_input_open(L.byref(h), task, i))
                st.handles.append(h)
                views.append(_InputView(h, flow_name))
                steps.append(L.dec(L.lib.mf_task_step(h)))
            st.inputs = Inputs(views, steps)
        depth = L.lib.mf_task_foreach_depth(task)
        if depth and not node.is_join:
            # self.input: item `index` of the foreach variable of the step
            # that opened the innermost foreach.
            parent = st.open_parent()
            pstep = L.dec(L.lib.mf_task_step(parent)) if parent else None
            pnode = graph[pstep] if pstep in graph.nodes else None
            if pnode is not None and pnode.foreach_param:
                items = artifacts.load(parent, pnode.foreach_param)
                idx = L.lib.mf_task_foreach_index(task, depth - 1)
                st.foreach_item = list(items)[idx] if not hasattr(items, "__getitem__") \
                    else items[idx]
            else:
                # Deeper in the foreach body: the item passes on as an artifact.
                try:
                    st.foreach_item = artifacts.load(parent, "_foreach_input") if parent \
                        else None
                except KeyError:
                    st.foreach_item = None

        func = getattr(flow, node.attr)
        try:
            if node.is_join:
                func(st.inputs)
            else:
                func()
        except Exception:  # noqa: BLE001 - the step's error is the task's result
            text = traceback.format_exc()
            sys.stderr.write(text)
            sys.stderr.flush()
            return _fail(task, text.rstrip())
        if node.type != "end" and st.next is None:
            sys.stderr.write("metaflow: step '%s' did not call self.next()\n" % step_name)
            return 1
        if st.foreach_item is not None and depth and "_foreach_input" not in flow.__dict__:
            object.__setattr__(flow, "_foreach_input", st.foreach_item)
            st.assigned.add("_foreach_input")
        try:
            persist(flow, st)
        except artifacts.UnpicklableArtifact as e:
            sys.stderr.write("metaflow: step '%s': %s\n" % (step_name, e))
            return _fail(task, "step '%s': %s" % (step_name, e))
        if node.foreach_param is not None:
            try:
                items = getattr(flow, node.foreach_param)
                values = [_short_repr(v) for v in items]
            except (AttributeError, TypeError) as e:
                sys.stderr.write("metaflow: step '%s': foreach variable '%s' is not a list: "
                                 "%s\n" % (step_name, node.foreach_param, e))
                return 1
            L.check(L.lib.mf_task_set_foreach(task, len(values), L.cstr_array(values)))
        if node.condition is not None:
            try:
                case = getattr(flow, node.condition)
            except AttributeError:
                sys.stderr.write("metaflow: step '%s': condition '%s' is not set\n"
                                 % (step_name, node.condition))
                return 1
            L.check(L.lib.mf_task_set_switch(task, L.enc(str(case))))
        sys.stdout.flush()
        sys.stderr.flush()
        L.check(L.lib.mf_task_commit(task, L.MF_TASK_SUCCEEDED), "committing the task")
        return 0
    except L.MetaflowLibError as e:
        sys.stderr.write("metaflow: %s\n" % e)
        return 1
    finally:
        if st is not None:
            st.close()
        L.lib.mf_task_free(task)
        L.lib.mf_engine_free(engine)
