"""Exceptions of the metaflow package, with Metaflow's names and hierarchy.

Every error the client API raises on purpose derives from
MetaflowException: MetaflowNotFound for an object (flow, run, step, task,
artifact, datastore) that does not exist, MetaflowNamespaceMismatch for one
outside the current namespace, MetaflowInvalidPathspec for a malformed
pathspec, MetaflowTaggingError for a refused tag change.

Metaflow's own module is `metaflow.exception`; these are the same classes.
"""

# A task process exiting with this code is not retried.
METAFLOW_EXIT_DISALLOW_RETRY = 202
# A task process exiting with this code is retried (when tries are left).
METAFLOW_EXIT_ALLOW_RETRY = 203


class MetaflowException(Exception):
    """Base of Metaflow's errors; `headline` is a short title for the kind."""

    headline = "Flow failed"

    def __init__(self, msg="", lineno=None, source_file=None):
        self.message = msg
        self.line_no = lineno
        self.source_file = source_file
        super().__init__(msg)

    def __str__(self):
        where = ""
        if self.source_file:
            where = "%s:" % self.source_file
        if self.line_no:
            where = "line %d:" % self.line_no
        return "%s: %s" % (where, self.message) if where else str(self.message)


class MetaflowExceptionWrapper(Exception):
    """A picklable stand-in for an exception raised in a task: its type
    name, text and traceback, without the original class."""

    def __init__(self, exc=None):
        super().__init__()
        self.exception = None
        self.type = None
        self.stacktrace = None
        if exc is not None:
            import sys
            import traceback

            self.exception = str(exc)
            self.type = "%s.%s" % (type(exc).__module__, type(exc).__name__)
            if sys.exc_info()[0] is not None:
                self.stacktrace = traceback.format_exc()

    def __reduce__(self):
        return MetaflowExceptionWrapper, (None,), self.__dict__

    def __getstate__(self):
        return self.__dict__

    def __setstate__(self, state):
        self.__dict__ = state

    def __repr__(self):
        return str(self)

    def __str__(self):
        if self.stacktrace:
            return self.stacktrace
        return "[no stacktrace]\n%s: %s" % (self.type, self.exception)


class MetaflowNotFound(MetaflowException):
    headline = "Object not found"


class MetaflowNamespaceMismatch(MetaflowException):
    headline = "Object not in the current namespace"

    def __init__(self, namespace):
        self.namespace = namespace
        super().__init__("Object not in namespace '%s'" % (namespace,))
        self.args = (namespace,)  # pickles as it was made


class MetaflowInvalidPathspec(MetaflowException):
    headline = "Invalid pathspec"


class MetaflowInternalError(MetaflowException):
    headline = "Internal error"


class MetaflowTaggingError(MetaflowException):
    headline = "Tagging error"


class MetaflowUnknownUser(MetaflowException):
    headline = "Unknown user"

    def __init__(self):
        super().__init__("Metaflow could not determine your user name from the environment "
                         "($METAFLOW_USER, $USER, $USERNAME) or the password database")
        self.args = ()


class MetaflowDataMissing(MetaflowException):
    headline = "Data missing"


class CommandException(MetaflowException):
    headline = "Invalid command"


class ExternalCommandFailed(MetaflowException):
    headline = "External command failed"


class ParameterFieldFailed(MetaflowException):
    headline = "Parameter field failed"

    def __init__(self, name, field):
        import traceback

        super().__init__("When evaluating the field *%s* for the Parameter *%s*, "
                         "the following exception occurred:\n\n%s"
                         % (field, name, traceback.format_exc()))
        self.args = (name, field)


class ParameterFieldTypeMismatch(MetaflowException):
    headline = "Parameter field with a mismatching type"


class InvalidDecoratorAttribute(MetaflowException):
    headline = "Unknown decorator attribute"

    def __init__(self, deconame, attr, defaults):
        super().__init__("Decorator '%s' does not support the attribute '%s'. "
                         "These attributes are supported: %s."
                         % (deconame, attr, ", ".join(defaults)))
        self.args = (deconame, attr, defaults)


class UnhandledInMergeArtifactsException(MetaflowException):
    headline = "Unhandled artifacts in merge"

    def __init__(self, msg, unhandled):
        super().__init__(msg)
        self.artifact_names = unhandled
        self.args = (msg, unhandled)


class MissingInMergeArtifactsException(MetaflowException):
    headline = "Missing artifacts in merge"

    def __init__(self, msg, unhandled):
        super().__init__(msg)
        self.artifact_names = unhandled
        self.args = (msg, unhandled)
