"""@step(start=True) and @step(end=True): the first and last steps by any name."""
from metaflow import FlowSpec, step


class NamedEndsFlow(FlowSpec):

    @step(start=True)
    def begin(self):
        self.x = 1
        self.next(self.middle)

    @step
    def middle(self):
        self.x += 1
        self.next(self.finish)

    @step(end=True)
    def finish(self):
        self.x *= 10


if __name__ == "__main__":
    NamedEndsFlow()
