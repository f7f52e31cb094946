"""Parameters, artifacts of many kinds, private names, read-only rules."""
from metaflow import FlowSpec, IncludeFile, JSONType, Parameter, current, step


class BasicsFlow(FlowSpec):
    """Exercises parameters and artifacts."""

    count = Parameter("count", default=3, help="how many")
    ratio = Parameter("ratio", default=0.5)
    flag = Parameter("flag", default=False)
    config = Parameter("config", default='{"a": 1}', type=JSONType)
    names = Parameter("names", default="x,y", separator=",")
    label = Parameter("label", required=True, type=str)
    max_depth = Parameter("max_depth", default=2)
    notes = IncludeFile("notes", default=None, help="a text file")
    LIMIT = 10

    @step
    def start(self):
        self.numbers = list(range(self.count))
        self.blob = bytes(range(256)) * 8
        self.nested = {"k": [1, 2, {"z": None}], "t": (1, "two")}
        self._secret = "hidden"
        self.helper = lambda x: x  # not an artifact
        self.where = current.pathspec
        self.retry_seen = current.retry_count
        try:
            self.count = 99
            self.param_write = "allowed"
        except AttributeError as e:
            self.param_write = str(e)
        try:
            self.LIMIT = 11
            self.const_write = "allowed"
        except AttributeError as e:
            self.const_write = str(e)
        self.next(self.middle)

    @step
    def middle(self):
        self.total = sum(self.numbers) * self.ratio
        self.next(self.end)

    @step
    def end(self):
        self.summary = "%s:%d:%s:%s:%s:%s:%d" % (self.label, self.count, self.flag,
                                                  self.config["a"], "+".join(self.names),
                                                  self.total, self.max_depth)
        print("summary", self.summary)


if __name__ == "__main__":
    BasicsFlow()
