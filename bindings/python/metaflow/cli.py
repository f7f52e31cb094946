"""`python flow.py <command>`: Metaflow's command line over the C runtime."""
import argparse
import ctypes
import datetime
import json
import os
import sys
import time

from . import _lib as L
from . import artifacts
from .decorators import parse_with
from .graph import FlowGraph
from .parameters import MetaflowParameterError, Parameter

VERSION = "2.19.0+libmetaflow"


class CliError(Exception):
    pass


def _parameters(flow_cls):
    out = []
    for klass in reversed(flow_cls.__mro__):
        for attr, v in vars(klass).items():
            if isinstance(v, Parameter):
                out = [p for p in out if p[0] != attr] + [(attr, v)]
    return out


def _echo(msg, err=False):
    stream = sys.stderr if err else sys.stdout
    stream.write(msg + "\n")
    stream.flush()


def _ts():
    now = datetime.datetime.now()
    return now.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (now.microsecond // 1000)


# ------------------------------------------------------------------ parsing

def _top_parser(prog):
    p = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--metadata", default="local")
    p.add_argument("--datastore", default=None)
    p.add_argument("--datastore-root", default=None)
    p.add_argument("--environment", default="local")
    p.add_argument("--event-logger", default=None)
    p.add_argument("--monitor", default=None)
    p.add_argument("--with", dest="with_", action="append", default=[])
    p.add_argument("--pylint", dest="pylint", action="store_true")
    p.add_argument("--no-pylint", dest="pylint", action="store_false")
    p.add_argument("--package-suffixes", default=None)
    p.add_argument("--no-fork-server", action="store_true")
    p.add_argument("--help", "-h", action="store_true")
    p.add_argument("command", nargs="?")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _run_parser(prog, params, resume):
    p = argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    if resume:
        p.add_argument("step_to_rerun", nargs="?")
        p.add_argument("--origin-run-id", default=None)
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--max-workers", type=int, default=16)
    p.add_argument("--max-num-splits", type=int, default=100)
    p.add_argument("--max-log-size", type=int, default=10, help="MB per stream")
    p.add_argument("--run-id-file", default=None)
    p.add_argument("--namespace", default=None)
    p.add_argument("--user-namespace", default=None)
    p.add_argument("--decospecs", action="append", default=[])
    p.add_argument("--clone-only", action="store_true")
    p.add_argument("--reentrant", action="store_true")
    p.add_argument("--runner-attribute-file", default=None)
    p.add_argument("--no-fork-server", action="store_true",
                   help="start each task as a new Python process")
    if not resume:
        for attr, prm in params:
            names = [prm.option_name()]
            if prm.option_name() != "--" + prm.name.replace("_", "-"):
                names.append("--" + prm.name.replace("_", "-"))
            p.add_argument(*names, dest="param_" + attr, default=None, help=prm.help)
    return p


# ------------------------------------------------------------------ run

class _Progress:
    """Live output of a run: log lines prefixed with their task; on a
    terminal, a line of tasks done / running / failed per step below them."""

    def __init__(self, run_id_box, quiet, tty):
        self.run_id = run_id_box
        self.quiet = quiet
        self.tty = tty
        self.counts = {}   # step -> [done, running, failed]
        self.shown = False

    def _clear(self):
        if self.tty and self.shown:
            sys.stdout.write("\r\x1b[K")

    def _status(self):
        if not self.tty:
            return
        parts = ["%s %d/%d%s" % (s, c[0], c[0] + c[1], " (%d failed)" % c[2] if c[2] else "")
                 for s, c in self.counts.items()]
        sys.stdout.write("\r\x1b[K[" + "  ".join(parts)[:200] + "]")
        sys.stdout.flush()
        self.shown = True

    def line(self, step, task_id, stream, text):
        self._clear()
        prefix = "%s [%s/%s/%s]" % (_ts(), self.run_id[0], step, task_id)
        out = sys.stderr if stream == L.MF_LOG_STDERR and not self.tty else sys.stdout
        out.write("%s %s\n" % (prefix, text))
        out.flush()
        self._status()

    def event(self, ev):
        step = L.dec(ev.step)
        if step is not None:
            c = self.counts.setdefault(step, [0, 0, 0])
        t = ev.type
        msg = None
        if t == L.MF_EVENT_TASK_STARTED:
            c[1] += 1
            msg = "Task is starting (attempt %d)." % ev.attempt if ev.attempt else \
                "Task is starting."
        elif t == L.MF_EVENT_TASK_SUCCEEDED:
            c[1] = max(0, c[1] - 1)
            c[0] += 1
            msg = "Task finished successfully."
        elif t == L.MF_EVENT_TASK_FAILED:
            c[1] = max(0, c[1] - 1)
            c[2] += 1
            msg = "Task failed."
        elif t == L.MF_EVENT_TASK_RETRYING:
            msg = "Retrying the task (attempt %d)." % ev.attempt
        elif t == L.MF_EVENT_TASK_CAUGHT:
            c[0] += 1
            msg = "The failure was caught by @catch."
        elif t == L.MF_EVENT_TASK_CLONED:
            c[0] += 1
            msg = "Cloned from the origin run."
        if msg and not self.quiet:
            self.line(step, L.dec(ev.task_id), L.MF_LOG_STDOUT, msg)

    def done(self):
        self._clear()
        if self.tty and self.shown:
            sys.stdout.write("\n")
            self._status()
            sys.stdout.write("\n")
        sys.stdout.flush()


def _start_run(flow, graph, top, opts, params, resume):
    flow_cls = type(flow)
    for n in graph:
        for d in n.decorators:
            why = d.unsupported()
            if why:
                raise CliError("step '%s': %s" % (n.name, why))
    # The fork server is forked first: no library state and no thread yet.
    fork = None
    if not (top.no_fork_server or opts.no_fork_server or
            os.environ.get("METAFLOW_NO_FORK_SERVER")):
        from .forkserver import ForkServer

        def run_task(step):
            from . import task
            return task.execute(flow_cls, graph, step, tags=opts.tag)
        fork = ForkServer(run_task)
    engine = None
    cflow = None
    ex = L.c_void_p()
    run = L.c_void_p()
    try:
        engine = L.open_engine()
        cflow = graph.build()
        if L.lib.mf_flow_validate(cflow) != L.MF_OK:
            raise CliError(L.error_text())
        L.check(L.lib.mf_executor_local_new(L.byref(ex), engine, None))
        run_id_box = ["?"]
        progress = _Progress(run_id_box, top.quiet, sys.stdout.isatty())

        def on_line(line_p, _payload):
            ln = line_p.contents
            text = ctypes.string_at(ln.text, ln.len).decode("utf-8", "replace")
            progress.line(L.dec(ln.step), L.dec(ln.task_id), ln.stream, text)

        def on_event(ev_p, _payload):
            progress.event(ev_p.contents)

        def launch(spec_p, out_fd, err_fd, pid_p, _payload):
            try:
                s = spec_p.contents
                env = {}
                for i in range(s.nenv):
                    k, _, v = L.dec(s.env[i]).partition("=")
                    env[k] = v
                pid_p[0] = fork.launch(L.dec(s.step), env, out_fd, err_fd)
                return 0
            except Exception as e:  # noqa: BLE001 - the attempt fails with the reason
                sys.stderr.write("metaflow: the fork server failed: %s\n" % e)
                return L.MF_EINVAL

        log_cb = L.LOG_CB(on_line)
        event_cb = L.EVENT_CB(on_event)
        launch_cb = L.LAUNCH_FN(launch)
        if fork is not None:
            L.check(L.lib.mf_executor_local_set_launcher(ex, launch_cb, None))
        so = L.mf_start_options()
        so.version = L.MF_START_OPTIONS_VERSION
        tags = list(opts.tag)
        tag_arr = L.cstr_array(tags)
        so.tags = tag_arr
        so.ntags = len(tags)
        names = [k for k, _ in params]
        values = [json.dumps(v) for _, v in params]
        name_arr, value_arr = L.cstr_array(names), L.cstr_array(values)
        if params:
            so.param_names, so.param_values, so.nparams = name_arr, value_arr, len(params)
        so.max_workers = max(1, opts.max_workers)
        so.max_num_splits = max(1, opts.max_num_splits)
        so.max_log_size = max(1, opts.max_log_size) << 20
        so.executor = ex
        main_file = os.path.abspath(sys.argv[0])
        cmd = [sys.executable, main_file, "--quiet", "step", "{step}", "--run-id", "{run_id}",
               "--task-id", "{task_id}", "--input-paths", "{input_paths}",
               "--split-index", "{split_index}", "--retry-count", "{retry_count}",
               "--max-user-code-retries", "{max_user_code_retries}"]
        for t in tags:
            cmd += ["--tag", t]
        cmd_arr = L.cstr_array(cmd)
        so.command, so.ncommand = cmd_arr, len(cmd)
        so.log_cb = log_cb
        so.event_cb = event_cb
        if resume:
            origin = opts.origin_run_id or _latest_run(engine, graph.name)
            if origin is None:
                raise CliError("cannot resume: flow %s has no run yet" % graph.name)
            so.resume_step = L.enc(opts.step_to_rerun)
            rc = L.lib.mf_run_resume(L.byref(run), engine, cflow, L.enc(origin),
                                     L.byref(so))
        else:
            rc = L.lib.mf_run_start(L.byref(run), engine, cflow, L.byref(so))
        L.check(rc)
        run_id = L.dec(L.lib.mf_run_id(run))
        run_id_box[0] = run_id
        if opts.run_id_file:
            with open(opts.run_id_file, "w") as f:
                f.write(run_id)
        if not top.quiet:
            _echo("%s Workflow starting (run-id %s):" % (_ts(), run_id))
        # Poll rather than wait, so that Ctrl-C reaches Python between polls
        # (a signal raised inside a ctypes callback would be lost).
        try:
            while True:
                rc = L.lib.mf_run_poll(run, 200)
                if rc != 1:
                    break
        except KeyboardInterrupt:
            progress.done()
            _echo("%s Interrupted: stopping the run's tasks." % _ts(), err=True)
            L.lib.mf_run_cancel(run)
            return 130
        if rc == 0:
            rc = L.lib.mf_run_wait(run)  # the final status and its message
        progress.done()
        if rc != L.MF_OK:
            _echo("%s Workflow failed." % _ts(), err=True)
            _echo(L.error_text(), err=True)
            return 1
        if not top.quiet:
            _echo("%s Done! See the run in the client with Run('%s/%s')."
                  % (_ts(), graph.name, run_id))
        return 0
    finally:
        if run:
            L.lib.mf_run_free(run)
        if ex:
            L.lib.mf_executor_free(ex)
        if cflow:
            L.lib.mf_flow_free(cflow)
        if engine:
            L.lib.mf_engine_free(engine)
        if fork is not None:
            fork.close()


def _latest_run(engine, flow_name):
    h = L.c_void_p()
    rc = L.lib.mf_run_list(L.byref(h), engine, L.enc(flow_name), None, 0, 0)
    if rc < 0:
        return None
    ids = L.strlist(h)
    return ids[0] if ids else None


def _resolve_params(flow_cls, opts):
    out = []
    for attr, prm in _parameters(flow_cls):
        raw = getattr(opts, "param_" + attr, None) if opts is not None else None
        out.append((attr, prm.resolve(raw)))
    return out


# ------------------------------------------------------------------ other commands

def _task_pathspec(flow_name, spec):
    parts = spec.strip("/").split("/")
    if parts and parts[0] == flow_name:
        parts = parts[1:]
    if len(parts) < 3:
        raise CliError("'%s' is not RUN/STEP/TASK" % spec)
    return "/".join([flow_name] + parts)


def _open_task(engine, pathspec):
    h = L.c_void_p()
    L.check(L.lib.mf_task_open(L.byref(h), engine, L.enc(pathspec)))
    return h


def _cmd_logs(graph, args):
    p = argparse.ArgumentParser(prog="logs")
    p.add_argument("pathspec")
    p.add_argument("--stdout", action="store_true")
    p.add_argument("--stderr", action="store_true")
    p.add_argument("--attempt", type=int, default=None)
    p.add_argument("--timestamps", action="store_true")
    o = p.parse_args(args)
    ps = _task_pathspec(graph.name, o.pathspec)
    if o.attempt is not None:
        ps += "/%d" % o.attempt
    engine = L.open_engine(readonly=True)
    try:
        t = _open_task(engine, ps)
        try:
            streams = []
            if o.stdout or not o.stderr:
                streams.append(L.MF_LOG_STDOUT)
            if o.stderr or not o.stdout:
                streams.append(L.MF_LOG_STDERR)
            for s in streams:
                b = L.mf_buf()
                L.check(L.lib.mf_task_log_read(t, s, L.MF_LOG_TIMESTAMPS if o.timestamps else 0,
                                               L.byref(b)))
                text = L.buf_bytes(b).decode("utf-8", "replace")
                out = sys.stdout if s == L.MF_LOG_STDOUT else sys.stderr
                if text:
                    out.write(text + "\n")
        finally:
            L.lib.mf_task_free(t)
    finally:
        L.lib.mf_engine_free(engine)
    return 0


def _cmd_dump(graph, args):
    p = argparse.ArgumentParser(prog="dump")
    p.add_argument("pathspec")
    p.add_argument("--include", default=None)
    p.add_argument("--file", default=None)
    p.add_argument("--max-value-size", type=int, default=1000)
    o = p.parse_args(args)
    ps = _task_pathspec(graph.name, o.pathspec)
    include = set(filter(None, (o.include or "").split(",")))
    engine = L.open_engine(readonly=True)
    try:
        t = _open_task(engine, ps)
        try:
            values = {}
            for n in artifacts.names(t, private=False):
                if include and n not in include:
                    continue
                values[n] = artifacts.load(t, n)
        finally:
            L.lib.mf_task_free(t)
    finally:
        L.lib.mf_engine_free(engine)
    if o.file:
        import pickle
        with open(o.file, "wb") as f:
            pickle.dump(values, f, protocol=5)
        _echo("Artifacts written to %s" % o.file)
    else:
        for n, v in sorted(values.items()):
            r = repr(v)
            _echo("%s: %s" % (n, r if len(r) <= o.max_value_size else r[:o.max_value_size] +
                              "..."))
    return 0


def _cmd_tag(graph, args):
    if not args or args[0] not in ("add", "remove", "replace", "list"):
        raise CliError("tag: use add, remove, replace or list")
    p = argparse.ArgumentParser(prog="tag " + args[0])
    p.add_argument("--run-id", default=None)
    p.add_argument("tags", nargs="*")
    o = p.parse_args(args[1:])
    engine = L.open_engine(readonly=args[0] == "list")
    run = L.c_void_p()
    try:
        rid = o.run_id or _latest_run(engine, graph.name)
        if rid is None:
            raise CliError("flow %s has no run" % graph.name)
        L.check(L.lib.mf_run_open(L.byref(run), engine, L.enc(graph.name), L.enc(rid)))
        if args[0] == "add":
            L.check(L.lib.mf_run_tags_update(run, L.cstr_array(o.tags), len(o.tags), None, 0))
        elif args[0] == "remove":
            L.check(L.lib.mf_run_tags_update(run, None, 0, L.cstr_array(o.tags), len(o.tags)))
        elif args[0] == "replace":
            if len(o.tags) != 2:
                raise CliError("tag replace: give the old tag and the new tag")
            L.check(L.lib.mf_run_tags_update(run, L.cstr_array(o.tags[1:]), 1,
                                             L.cstr_array(o.tags[:1]), 1))
        h = L.c_void_p()
        L.check(L.lib.mf_run_tags(run, L.byref(h)))
        for t in L.strlist(h):
            _echo(t)
    finally:
        if run:
            L.lib.mf_run_free(run)
        L.lib.mf_engine_free(engine)
    return 0


def _cmd_show(graph):
    if graph.doc:
        _echo(graph.doc + "\n")
    for line in graph.output_steps():
        _echo(line)
    return 0


def _cmd_check(graph, quiet):
    if not quiet:
        _echo("Validating your flow...")
    errs = graph.validate()
    if errs:
        for e in errs:
            _echo("    Validity checker found an issue:\n    %s" % e, err=True)
        return 1
    if not quiet:
        _echo("    The graph looks good!")
    return 0


def _cmd_output_raw(graph):
    out = {}
    for n in graph:
        out[n.name] = {"type": n.type, "out_funcs": n.out_funcs, "in_funcs": n.in_funcs,
                       "foreach_param": n.foreach_param, "condition": n.condition,
                       "switch_cases": n.switch_cases, "is_join": n.is_join,
                       "decorators": [d.name for d in n.decorators], "doc": n.doc}
    _echo(json.dumps(out, indent=2))
    return 0


USAGE = """Usage: python {prog} [OPTIONS] COMMAND [ARGS]...

Commands:
  run        Run the flow locally.
  resume     Resume a failed run (from STEP, or from what failed).
  step       Run one step as a task (used by the runtime).
  show       Show the structure of the flow.
  check      Check that the flow is valid.
  logs       Show the logs of a task: logs RUN/STEP/TASK.
  dump       Show the artifacts of a task: dump RUN/STEP/TASK.
  tag        add / remove / replace / list the tags of a run.
  output-raw The graph as JSON.
  version    Print the version.
  help       Show this message.
"""


def main(flow):
    sys.exit(run_cli(flow, sys.argv[1:]))


def run_cli(flow, argv):
    flow_cls = type(flow)
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "flow.py"
    top, rest = _top_parser(prog).parse_known_args(argv)
    if top.help or top.command in (None, "help"):
        _echo(USAGE.format(prog=prog))
        return 0 if top.command == "help" or top.help else 2
    explicit = top.datastore is not None
    if not explicit:
        # A task process gets MF_DATASTORE from its runtime.
        top.datastore = (os.environ.get("MF_DATASTORE") or
                         os.environ.get("METAFLOW_DEFAULT_DATASTORE") or "local")
        if top.datastore == "fs":
            top.datastore = "local"
    if top.datastore not in ("local", "s3"):
        _echo("metaflow: --datastore %s is not supported (use 'local' or 's3')"
              % top.datastore, err=True)
        return 1
    if top.environment not in ("local",):
        _echo("metaflow: --environment %s is not supported by this version yet (only "
              "'local')" % top.environment, err=True)
        return 1
    # The library reads the datastore from the environment, and passes it
    # on to task processes.
    if explicit:
        os.environ["MF_DATASTORE"] = "fs" if top.datastore == "local" else top.datastore
    if top.datastore_root:
        os.environ["MF_DATASTORE_ROOT"] = (os.path.abspath(top.datastore_root)
                                           if top.datastore == "local" else top.datastore_root)
    elif (top.datastore == "s3" and not os.environ.get("METAFLOW_DATASTORE_SYSROOT_S3") and
          not os.environ.get("MF_DATASTORE_ROOT")):
        _echo("metaflow: --datastore s3 needs a root: set METAFLOW_DATASTORE_SYSROOT_S3 "
              "(s3://bucket/prefix) or pass --datastore-root", err=True)
        return 1
    args = list(top.args) + rest
    try:
        graph = FlowGraph(flow_cls)
        for spec in top.with_:
            d = parse_with(spec)
            for n in graph:
                if not any(x.name == d.name for x in n.decorators):
                    n.decorators.append(d)
        cmd = top.command
        if cmd == "version":
            _echo("Metaflow %s (libmetaflow %s)" % (VERSION, L.dec(L.lib.mf_version_string())))
            return 0
        if cmd == "show":
            return _cmd_show(graph)
        if cmd == "check":
            return _cmd_check(graph, top.quiet)
        if cmd == "output-raw":
            return _cmd_output_raw(graph)
        if cmd == "logs":
            return _cmd_logs(graph, args)
        if cmd == "dump":
            return _cmd_dump(graph, args)
        if cmd == "tag":
            return _cmd_tag(graph, args)
        if cmd == "step":
            p = argparse.ArgumentParser(prog="step")
            p.add_argument("step_name")
            for opt in ("--run-id", "--task-id", "--input-paths", "--split-index",
                        "--retry-count", "--max-user-code-retries", "--namespace",
                        "--ubf-context"):
                p.add_argument(opt, default=None)
            p.add_argument("--tag", action="append", default=[])
            o, _unknown = p.parse_known_args(args)
            from . import task
            return task.execute(flow_cls, graph, o.step_name, tags=o.tag)
        if cmd in ("run", "resume"):
            errs = graph.validate()
            if errs:
                for e in errs:
                    _echo("metaflow: %s" % e, err=True)
                return 1
            params_decl = _parameters(flow_cls)
            opts = _run_parser(prog + " " + cmd, params_decl, cmd == "resume").parse_args(args)
            params = [] if cmd == "resume" else _resolve_params(flow_cls, opts)
            return _start_run(flow, graph, top, opts, params, cmd == "resume")
        _echo("metaflow: no such command '%s'\n" % cmd, err=True)
        _echo(USAGE.format(prog=prog), err=True)
        return 2
    except (CliError, MetaflowParameterError, L.MetaflowLibError, ValueError,
            TypeError) as e:
        _echo("metaflow: %s" % e, err=True)
        return 1
