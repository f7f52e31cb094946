"""`current`: what the running task is (Metaflow's metaflow.current)."""


class Current:
    def __init__(self):
        self._reset()

    def _reset(self):
        self.flow_name = None
        self.run_id = None
        self.step_name = None
        self.task_id = None
        self.retry_count = 0
        self.origin_run_id = None
        self.namespace = None
        self.username = None
        self.tags = frozenset()
        self.is_running_flow = False
        self.tempdir = None
        self.parameter_names = []
        self.is_production = False
        self.project_name = None
        self.branch_name = None

    def _set(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    @property
    def pathspec(self):
        if not self.task_id:
            return None
        return "/".join((self.flow_name, self.run_id, self.step_name, self.task_id))

    def __contains__(self, name):
        return getattr(self, name, None) is not None


current = Current()
