"""Benchmark (b): a 100-way foreach of trivial tasks, and its join."""
from metaflow import FlowSpec, Parameter, step


class BenchForeachFlow(FlowSpec):
    width = Parameter("width", default=100)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.y = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        assert self.total == self.width * (self.width - 1)


if __name__ == "__main__":
    BenchForeachFlow()
