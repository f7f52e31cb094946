"""libmetaflow's Python package: Metaflow's flow API, command line and client
over the C engine (ctypes). `from metaflow import FlowSpec, step` runs
existing flows unchanged."""
from .current import current
from .decorators import (batch, card, catch, conda, conda_base, environment, kubernetes,
                         parallel, project, pypi, pypi_base, resources, retry, schedule,
                         timeout, trigger, trigger_on_finish)
from .flowspec import FlowSpec, step
from .parameters import IncludeFile, JSONType, Parameter
from .exceptions import MetaflowException, MetaflowNamespaceMismatch, MetaflowNotFound

_CLIENT = frozenset(("Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "namespace",
                     "get_namespace", "default_namespace"))


def __getattr__(name):
    # The client loads on first use: a flow's tasks never pay for it.
    if name in _CLIENT:
        from . import client
        return getattr(client, name)
    raise AttributeError("module 'metaflow' has no attribute '%s'" % name)

__version__ = "2.19.0+libmetaflow"

__all__ = ["FlowSpec", "step", "current", "Parameter", "JSONType", "IncludeFile", "retry",
           "timeout", "catch", "resources", "environment", "batch", "kubernetes", "card",
           "conda", "pypi", "conda_base", "pypi_base", "project", "schedule", "parallel",
           "trigger", "trigger_on_finish", "Metaflow", "Flow", "Run", "Step", "Task",
           "DataArtifact", "namespace", "get_namespace", "default_namespace",
           "MetaflowException", "MetaflowNotFound", "MetaflowNamespaceMismatch"]
