"""HelloFlow: the smallest Metaflow flow, start -> hello -> end.

A step is a method decorated with @step; `self.next()` names the step
that follows. Whatever a step assigns to `self` is stored as an artifact
and seen by the steps after it, and by the client afterwards.

    python helloworld.py show
    python helloworld.py run
"""
from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    """A flow where Metaflow prints 'Hi'."""

    @step
    def start(self):
        """The start step: every flow has one."""
        print("HelloFlow is starting.")
        self.next(self.hello)

    @step
    def hello(self):
        """Say hi, and keep the message as an artifact."""
        self.message = "Metaflow says: Hi!"
        print(self.message)
        self.next(self.end)

    @step
    def end(self):
        """The end step: every flow has one too."""
        print("HelloFlow is all done.")


if __name__ == "__main__":
    HelloFlow()
