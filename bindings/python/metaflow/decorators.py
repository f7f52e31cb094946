"""Step and flow decorators. Each step decorator becomes step attributes
that the C runtime interprets (docs/task-protocol.md §5): retry, timeout,
catch, resources and environment work; the others are accepted so that
flows import, and a run that needs one that is not available here stops
with a message saying so."""


class StepDecorator:
    name = None
    defaults = {}

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(self.defaults)
        if unknown and self.defaults:
            raise TypeError("@%s got unknown argument(s): %s"
                            % (self.name, ", ".join(sorted(unknown))))
        self.attrs = dict(self.defaults)
        self.attrs.update(kwargs)

    def attributes(self):
        return {}

    def unsupported(self):
        """Why a run cannot honour this decorator here, or None."""
        return None

    def __repr__(self):
        return "@%s(%s)" % (self.name, ", ".join("%s=%r" % kv for kv in self.attrs.items()))


def _num(v):
    return repr(float(v)) if isinstance(v, float) else str(int(v))


class RetryDecorator(StepDecorator):
    name = "retry"
    defaults = {"times": 3, "minutes_between_retries": 2}

    def attributes(self):
        return {"retry.times": _num(self.attrs["times"]),
                "retry.minutes_between_retries": _num(self.attrs["minutes_between_retries"])}


class TimeoutDecorator(StepDecorator):
    name = "timeout"
    defaults = {"seconds": 0, "minutes": 0, "hours": 0}

    def attributes(self):
        return {"timeout.%s" % k: _num(v) for k, v in self.attrs.items() if v}


class CatchDecorator(StepDecorator):
    name = "catch"
    defaults = {"var": None, "print_exception": True}

    def attributes(self):
        out = {"catch": "1"}
        if self.attrs["var"]:
            out["catch.var"] = str(self.attrs["var"])
        return out


class ResourcesDecorator(StepDecorator):
    name = "resources"
    defaults = {"cpu": 1, "gpu": None, "disk": None, "memory": 4096, "shared_memory": None}

    def attributes(self):
        out = {}
        for k in ("cpu", "gpu", "memory"):
            if self.attrs.get(k) is not None:
                out["resources.%s" % k] = _num(self.attrs[k])
        return out


class EnvironmentDecorator(StepDecorator):
    name = "environment"
    defaults = {"vars": {}}

    def attributes(self):
        return {"env.%s" % k: str(v) for k, v in (self.attrs["vars"] or {}).items()}


class _Accepted(StepDecorator):
    """Accepted with any arguments."""

    def __init__(self, **kwargs):
        self.attrs = dict(kwargs)


class BatchDecorator(_Accepted):
    name = "batch"

    def unsupported(self):
        return ("@batch runs a step on AWS Batch, which this version of the runtime does "
                "not support yet; remove @batch to run the step locally")


class KubernetesDecorator(_Accepted):
    name = "kubernetes"

    def unsupported(self):
        return ("@kubernetes runs a step on Kubernetes, which this version of the runtime "
                "does not support yet; remove @kubernetes to run the step locally")


class CardDecorator(_Accepted):
    name = "card"      # cards are not rendered yet; the step runs normally


class CondaDecorator(_Accepted):
    name = "conda"     # active only with --environment=conda, which is refused


class PypiDecorator(_Accepted):
    name = "pypi"


class ParallelDecorator(_Accepted):
    name = "parallel"

    def unsupported(self):
        return "@parallel (multi-node steps) is not supported by this runtime"


def _make(cls):
    def deco(f=None, **kwargs):
        if f is not None and callable(f) and not kwargs:
            return _attach(f, cls())
        if f is not None and not callable(f):
            raise TypeError("@%s takes keyword arguments only" % cls.name)

        def wrap(func):
            return _attach(func, cls(**kwargs))
        return wrap
    deco.__name__ = cls.name
    deco.__doc__ = cls.__doc__
    return deco


def _attach(func, deco):
    decos = list(getattr(func, "_mf_decorators", []))
    if any(d.name == deco.name for d in decos):
        raise TypeError("@%s is applied twice to step '%s'" % (deco.name, func.__name__))
    decos.append(deco)
    func._mf_decorators = decos
    return func


retry = _make(RetryDecorator)
timeout = _make(TimeoutDecorator)
catch = _make(CatchDecorator)
resources = _make(ResourcesDecorator)
environment = _make(EnvironmentDecorator)
batch = _make(BatchDecorator)
kubernetes = _make(KubernetesDecorator)
card = _make(CardDecorator)
conda = _make(CondaDecorator)
pypi = _make(PypiDecorator)
parallel = _make(ParallelDecorator)

STEP_DECORATORS = {c.name: c for c in (RetryDecorator, TimeoutDecorator, CatchDecorator,
                                       ResourcesDecorator, EnvironmentDecorator, BatchDecorator,
                                       KubernetesDecorator, CardDecorator, CondaDecorator,
                                       PypiDecorator, ParallelDecorator)}


def _flow_decorator(name):
    def deco(cls=None, **kwargs):
        def wrap(c):
            c._mf_flow_decorators = dict(getattr(c, "_mf_flow_decorators", {}))
            c._mf_flow_decorators[name] = kwargs
            return c
        return wrap(cls) if cls is not None else wrap
    deco.__name__ = name
    return deco


project = _flow_decorator("project")
schedule = _flow_decorator("schedule")
conda_base = _flow_decorator("conda_base")
pypi_base = _flow_decorator("pypi_base")
trigger = _flow_decorator("trigger")
trigger_on_finish = _flow_decorator("trigger_on_finish")


def parse_with(spec):
    """`--with retry:times=2,minutes_between_retries=0` -> decorator."""
    name, _, args = spec.partition(":")
    cls = STEP_DECORATORS.get(name)
    if cls is None:
        raise ValueError("--with %s: unknown decorator '%s'" % (spec, name))
    kwargs = {}
    for item in filter(None, args.split(",")):
        k, eq, v = item.partition("=")
        if not eq:
            raise ValueError("--with %s: '%s' is not name=value" % (spec, item))
        try:
            import ast
            kwargs[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            kwargs[k] = v
    return cls(**kwargs)
