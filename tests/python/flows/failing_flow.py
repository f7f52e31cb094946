"""Failures: an exception, retry then success, catch, timeout; fixed by an
environment variable so that resume can finish it."""
import glob
import os
import time

from metaflow import FlowSpec, catch, current, retry, step, timeout


class FailingFlow(FlowSpec):

    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @retry(times=2, minutes_between_retries=0)
    @step
    def work(self):
        marker = os.environ.get("MF_TEST_DIR", ".") + "/work.%d.runs" % self.input
        with open(marker, "a") as f:
            f.write("x\n")
        if self.input == 1 and current.retry_count < 1:
            raise RuntimeError("flaky on the first try")
        if self.input == 2 and not os.environ.get("MF_TEST_FIXED"):
            # Fail only once item 1's retry has committed (its attempt-1
            # manifest exists), so that the run's fail-fast cannot cut it short.
            pattern = os.path.join(os.environ.get("MF_DATASTORE_ROOT", "."), "FailingFlow",
                                   current.run_id, "work", "*", "1.manifest")
            for _ in range(1000):
                if glob.glob(pattern):
                    break
                time.sleep(0.01)
            raise ValueError("item 2 is broken")
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.next(self.risky)

    @catch(var="risk_error")
    @step
    def risky(self):
        raise KeyError("caught, not fatal")
        self.next(self.slow)

    @timeout(seconds=int(os.environ.get("MF_TEST_TIMEOUT", "30")))
    @step
    def slow(self):
        time.sleep(float(os.environ.get("MF_TEST_SLEEP", "0")))
        self.next(self.end)

    @step
    def end(self):
        print("values", self.values)


if __name__ == "__main__":
    FailingFlow()
