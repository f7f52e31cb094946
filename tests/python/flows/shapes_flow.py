"""Static split with inputs.<step> and merge_artifacts; nested foreach with
self.input, self.index and foreach_stack(); a switch."""
from metaflow import FlowSpec, step


class ShapesFlow(FlowSpec):

    @step
    def start(self):
        self.shared = "same"
        self.mode = "big"
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "L"
        self.only_left = 1
        self.next(self.meet)

    @step
    def right(self):
        self.side = "R"
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = inputs.left.side + inputs.right.side
        self.order = [i.side for i in inputs]
        self.merge_artifacts(inputs, exclude=["side"])
        self.shared_seen = self.shared + "!"  # a merged artifact reads back
        self.next(self.outer)

    @step
    def outer(self):
        self.letters = ["p", "q"]
        self.next(self.fan, foreach="letters")

    @step
    def fan(self):
        self.letter = self.input
        self.digits = [1, 2, 3]
        self.next(self.inner, foreach="digits")

    @step
    def inner(self):
        self.cell = "%s%d" % (self.letter, self.input)
        self.stack = self.foreach_stack()
        self.position = self.index
        self.next(self.join_inner)

    @step
    def join_inner(self, inputs):
        self.row = [i.cell for i in inputs]
        self.letter = inputs[0].letter
        self.merge_artifacts(inputs, exclude=["cell", "stack", "position"])
        self.next(self.join_outer)

    @step
    def join_outer(self, inputs):
        self.grid = [i.row for i in inputs]
        self.merge_artifacts(inputs, include=["sides", "shared", "mode"])
        self.next(self.choose)

    @step
    def choose(self):
        self.next({"big": self.big, "small": self.small}, condition="mode")

    @step
    def big(self):
        self.path = "big"
        self.next(self.end)

    @step
    def small(self):
        self.path = "small"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ShapesFlow()
