"""The flow graph, read from the flow class's source as Metaflow does: the
last statement of each step must be `self.next(...)`; its arguments give
the transition. The graph is then built in C (mf_flow_*) and validated
there, so every host gets the same rules and messages.
"""
import ast
import inspect
import textwrap

from . import _lib as L


class StepNode:
    def __init__(self, name, func, lineno):
        # The graph's name: `start` / `end` for a step marked
        # @step(start=True) / @step(end=True), whatever its method is called;
        # `attr` is the method's name.
        self.attr = name
        self.name = ("start" if getattr(func, "_mf_start", False)
                     else "end" if getattr(func, "_mf_end", False) else name)
        self.func = func
        self.lineno = lineno
        self.type = "linear"        # linear, split, foreach, split-switch, join, end, start
        self.out_funcs = []         # target step names, in order
        self.switch_cases = {}      # case value -> step
        self.condition = None
        self.foreach_param = None
        self.is_join = False
        self.has_next = False
        self.next_error = None      # why the step's self.next could not be read
        self.decorators = list(getattr(func, "_mf_decorators", []))
        self.doc = inspect.getdoc(func) or ""
        self.in_funcs = []


class FlowGraph:
    def __init__(self, flow_cls):
        self.name = flow_cls.__name__
        self.nodes = {}
        self.sorted_nodes = []
        self.doc = inspect.getdoc(flow_cls) or ""
        self._read(flow_cls)
        # self.next(self.<method>) names methods; the graph names steps.
        by_attr = {n.attr: n.name for n in self.nodes.values()}
        for node in self.nodes.values():
            node.out_funcs = [by_attr.get(t, t) for t in node.out_funcs]
            node.switch_cases = {k: by_attr.get(v, v) for k, v in node.switch_cases.items()}
        self.by_attr = by_attr
        for node in self.nodes.values():
            for t in node.out_funcs:
                if t in self.nodes:
                    self.nodes[t].in_funcs.append(node.name)

    def __getitem__(self, name):
        return self.nodes[name]

    def __iter__(self):
        return iter(self.nodes[n] for n in self.sorted_nodes)

    def _read(self, flow_cls):
        steps = []
        for klass in reversed(flow_cls.__mro__):
            for name, attr in vars(klass).items():
                if callable(attr) and getattr(attr, "is_step", False):
                    steps.append((name, attr))
        seen = {}
        for name, func in steps:
            seen[name] = func  # a subclass's definition wins
        items = []
        for name, func in seen.items():
            try:
                lineno = inspect.getsourcelines(func)[1]
            except (OSError, TypeError):
                lineno = 0
            items.append((lineno, name, func))
        for lineno, name, func in sorted(items, key=lambda x: (x[0], x[1])):
            node = StepNode(name, func, lineno)
            self._parse(node)
            self.nodes[node.name] = node
            self.sorted_nodes.append(node.name)

    @staticmethod
    def _parse(node):
        func = node.func
        try:
            src = textwrap.dedent(inspect.getsource(func))
            tree = ast.parse(src)
        except (OSError, TypeError, SyntaxError) as e:
            node.next_error = "cannot read the source of step '%s': %s" % (node.name, e)
            return
        fdef = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)), None)
        if fdef is None:
            node.next_error = "step '%s' is not a function" % node.name
            return
        node.is_join = len(fdef.args.args) == 2
        if node.name == "end":
            node.type = "end"
        body = [b for b in fdef.body
                if not (isinstance(b, ast.Expr) and isinstance(getattr(b, "value", None),
                                                                 ast.Constant)
                        and isinstance(b.value.value, str))]
        last = body[-1] if body else None
        call = last.value if isinstance(last, ast.Expr) else None
        is_next = (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                   and call.func.attr == "next" and isinstance(call.func.value, ast.Name)
                   and call.func.value.id == "self")
        if not is_next:
            if node.name != "end":
                node.next_error = ("step '%s' must end with self.next(...) as its last "
                                   "statement (line %d)" % (node.name, node.lineno))
            return
        node.has_next = True
        kw = {k.arg: k.value for k in call.keywords}
        if "condition" in kw:
            if len(call.args) != 1 or not isinstance(call.args[0], ast.Dict):
                node.next_error = ("step '%s': a switch is self.next({\"case\": self.step, "
                                   "...}, condition=\"var\")" % node.name)
                return
            cond = kw["condition"]
            if not (isinstance(cond, ast.Constant) and isinstance(cond.value, str)):
                node.next_error = "step '%s': condition must be a string" % node.name
                return
            node.condition = cond.value
            node.type = "split-switch"
            for k, v in zip(call.args[0].keys, call.args[0].values):
                if not (isinstance(k, ast.Constant) and isinstance(v, ast.Attribute)):
                    node.next_error = ("step '%s': switch cases must be literal keys mapping "
                                       "to self.<step>" % node.name)
                    return
                node.switch_cases[str(k.value)] = v.attr
                node.out_funcs.append(v.attr)
            return
        for a in call.args:
            if not (isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name)
                    and a.value.id == "self"):
                node.next_error = ("step '%s': self.next() takes steps as self.<step>"
                                   % node.name)
                return
            node.out_funcs.append(a.attr)
        if "foreach" in kw:
            fe = kw["foreach"]
            if not (isinstance(fe, ast.Constant) and isinstance(fe.value, str)):
                node.next_error = "step '%s': foreach must be a string" % node.name
                return
            node.foreach_param = fe.value
            node.type = "foreach"
        elif len(node.out_funcs) > 1:
            node.type = "split"
        if node.is_join and node.type == "linear":
            node.type = "join"
        if node.name == "start" and node.type == "linear":
            node.type = "start"

    def problems(self):
        """Errors found before C sees the graph (unreadable self.next)."""
        return [n.next_error for n in self if n.next_error]

    def build(self):
        """An mf_flow handle (caller frees with mf_flow_free) carrying the
        graph and each step's decorator attributes."""
        h = L.c_void_p()
        L.check(L.lib.mf_flow_new(L.byref(h), L.enc(self.name)), "flow '%s'" % self.name)
        try:
            for n in self:
                L.check(L.lib.mf_flow_add_step(h, L.enc(n.name),
                                               L.MF_STEP_JOIN if n.is_join else 0))
            for n in self:
                if n.condition is not None:
                    cases = list(n.switch_cases.keys())
                    L.check(L.lib.mf_flow_set_switch(
                        h, L.enc(n.name), L.cstr_array(cases),
                        L.cstr_array([n.switch_cases[c] for c in cases]), len(cases),
                        L.enc(n.condition)))
                elif n.foreach_param is not None:
                    target = n.out_funcs[0] if n.out_funcs else ""
                    L.check(L.lib.mf_flow_set_foreach(h, L.enc(n.name), L.enc(target),
                                                      L.enc(n.foreach_param)))
                elif n.out_funcs:
                    L.check(L.lib.mf_flow_set_next(h, L.enc(n.name),
                                                   L.cstr_array(n.out_funcs),
                                                   len(n.out_funcs)))
                for deco in n.decorators:
                    for k, v in deco.attributes().items():
                        L.check(L.lib.mf_flow_set_step_attr(h, L.enc(n.name), L.enc(k),
                                                            L.enc(v)))
            return h
        except BaseException:
            L.lib.mf_flow_free(h)
            raise

    def validate(self):
        """[] or the list of problems (Python-side, then C's)."""
        errs = self.problems()
        if errs:
            return errs
        h = self.build()
        try:
            rc = L.lib.mf_flow_validate(h)
            if rc != L.MF_OK:
                return [L.error_text()]
            return []
        finally:
            L.lib.mf_flow_free(h)

    def output_steps(self):
        """Lines for `show`: each step with its doc and what follows it."""
        out = []
        for n in self:
            out.append("Step %s" % n.name)
            if n.doc:
                out.extend("    " + line for line in n.doc.splitlines())
            if n.type == "end":
                out.append("    => (end)")
            elif n.foreach_param:
                out.append("    => %s (foreach over %s)" % (", ".join(n.out_funcs),
                                                          n.foreach_param))
            elif n.condition:
                out.append("    => %s (switch on %s)" % (", ".join(
                    "%s: %s" % (k, v) for k, v in n.switch_cases.items()), n.condition))
            else:
                out.append("    => %s" % ", ".join(n.out_funcs))
            out.append("")
        return out
