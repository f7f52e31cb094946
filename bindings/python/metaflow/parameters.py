"""Parameters of a run (Metaflow's Parameter, JSONType, IncludeFile).

A parameter's value comes from, in order: its command-line option
(`--name value`), the environment (`METAFLOW_RUN_<NAME>`), its default.
The start task stores every value as an artifact, so each step reads it as
`self.name`; it is read-only there.
"""
import json
import os


class MetaflowParameterError(Exception):
    pass


class _JSONType:
    name = "JSON"

    def __call__(self, text):
        if not isinstance(text, str):
            return text
        try:
            return json.loads(text)
        except ValueError as e:
            raise ValueError("not valid JSON: %s" % e) from None

    def __repr__(self):
        return "JSONType"


JSONType = _JSONType()


def _parse_bool(text):
    if isinstance(text, bool):
        return text
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise ValueError("'%s' is not a boolean (true/false)" % text)


class Parameter:
    """A run parameter. A class attribute of the flow; in a step, `self.x`
    is its value (read-only)."""

    IS_PARAMETER = True

    def __init__(self, name, default=None, type=None, help=None, required=False,
                 separator=None, show_default=True, **kwargs):
        self.name = name
        self.default = default
        self.help = help
        self.required = required
        self.separator = separator
        self.show_default = show_default
        self.kwargs = kwargs
        if type is None:
            d = default() if callable(default) and not isinstance(default, type_) else default
            type = _type_of(d)
        self.type = type
        self._attr = None

    def __set_name__(self, owner, attr):
        self._attr = attr

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj._mf_artifact(self._attr or self.name)

    def __set__(self, obj, value):
        raise AttributeError("Parameter '%s' is read-only: a step cannot change it" % self.name)

    def option_name(self):
        return "--" + self.name  # as Metaflow: Parameter("out_dir") is --out_dir

    def type_name(self):
        t = self.type
        if t is JSONType:
            return "JSON"
        return getattr(t, "__name__", str(t))

    def convert(self, raw, origin):
        """A value from text (command line, environment) or the default."""
        if self.separator and isinstance(raw, str):
            parts = raw.split(self.separator)
            return [self._one(p, origin) for p in parts]
        return self._one(raw, origin)

    def _one(self, raw, origin):
        if raw is None:
            return None
        try:
            if self.type is bool:
                return _parse_bool(raw)
            if self.type is JSONType:
                return JSONType(raw)
            if isinstance(raw, str) and self.type in (int, float, str):
                return self.type(raw)
            if self.type in (int, float) and not isinstance(raw, (int, float)):
                return self.type(raw)
            return raw if not isinstance(raw, str) else self.type(raw)
        except (ValueError, TypeError) as e:
            raise MetaflowParameterError(
                "parameter '%s' (%s): invalid value %r from %s: %s"
                % (self.name, self.type_name(), raw, origin, e)) from None

    def resolve(self, cli_value):
        """The run's value of this parameter."""
        if cli_value is not None:
            return self.convert(cli_value, "the command line")
        env = os.environ.get("METAFLOW_RUN_" + self.name.upper().replace("-", "_"))
        if env is not None:
            return self.convert(env, "METAFLOW_RUN_" + self.name.upper())
        d = self.default
        if callable(d) and not isinstance(d, type_):
            d = d()
        if d is None and self.required:
            raise MetaflowParameterError("parameter '%s' is required: pass %s"
                                         % (self.name, self.option_name()))
        if isinstance(d, str) and self.type is not str:
            return self.convert(d, "its default")
        return d

    def __repr__(self):
        return "Parameter(%r, default=%r)" % (self.name, self.default)


type_ = type


def _type_of(default):
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (dict, list)):
        return JSONType
    return str


class IncludeFile(Parameter):
    """A parameter whose value is the content of a local file, read when the
    run starts (text, or bytes with is_text=False)."""

    def __init__(self, name, default=None, is_text=True, encoding="utf-8", help=None,
                 required=False, **kwargs):
        super().__init__(name, default=default, type=str, help=help, required=required,
                         **kwargs)
        self.is_text = is_text
        self.encoding = encoding

    def resolve(self, cli_value):
        path = cli_value
        if path is None:
            path = os.environ.get("METAFLOW_RUN_" + self.name.upper())
        if path is None:
            path = self.default
        if path is None:
            if self.required:
                raise MetaflowParameterError("parameter '%s' is required: pass %s FILE"
                                             % (self.name, self.option_name()))
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise MetaflowParameterError("parameter '%s': cannot read '%s': %s"
                                         % (self.name, path, e.strerror)) from None
        return data.decode(self.encoding) if self.is_text else data
