"""Benchmark (c): a 200 MB random uint8 numpy array saved in one step and
read (every byte) in the next."""
import numpy as np

from metaflow import FlowSpec, Parameter, step


class BenchBigArrayFlow(FlowSpec):
    mb = Parameter("mb", default=200)

    @step
    def start(self):
        rng = np.random.default_rng()  # new content each run: no dedup
        self.arr = rng.integers(0, 256, size=self.mb << 20, dtype=np.uint8)
        self.probe = self.arr[::1 << 20].tolist()  # one byte a MB, to check the read
        self.next(self.read)

    @step
    def read(self):
        assert self.arr.nbytes == self.mb << 20
        self.total = int(self.arr.sum(dtype=np.uint64))  # reads every byte
        assert self.arr[::1 << 20].tolist() == self.probe
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BenchBigArrayFlow()
