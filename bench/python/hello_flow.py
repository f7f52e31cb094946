"""Benchmark (a) and (d): a 3-step flow, start -> hello -> end; `x` is
the artifact the cold client read fetches."""
from metaflow import FlowSpec, step


class BenchHelloFlow(FlowSpec):

    @step
    def start(self):
        self.x = 1
        self.next(self.hello)

    @step
    def hello(self):
        self.greeting = "hello"
        self.next(self.end)

    @step
    def end(self):
        self.x = self.x + 41


if __name__ == "__main__":
    BenchHelloFlow()
