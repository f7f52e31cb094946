"""Smoke test on every pyenv Python 3.8+ of the machine: a small flow runs
with that interpreter (fork server and one process per task), and the
client, in that same interpreter, reads it back. Plain Python values only:
these interpreters have no numpy."""
import glob
import os
import re
import subprocess

import pytest

import metaflow
from flowrunner import env_for

PYENV_ROOT = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(metaflow.__file__)))


def _interpreters():
    found = []
    for path in sorted(glob.glob(os.path.join(PYENV_ROOT, "versions", "3.*", "bin", "python"))):
        name = path.split(os.sep)[-3]
        m = re.match(r"3\.(\d+)", name)
        if m and int(m.group(1)) >= 8 and os.access(path, os.X_OK):
            found.append((int(m.group(1)), name, path))
    return [pytest.param(path, id=name) for _, name, path in sorted(found)]


INTERPRETERS = _interpreters() or [
    pytest.param(None, id="none", marks=pytest.mark.skip(
        reason="no pyenv Python 3.8+ under %s/versions" % PYENV_ROOT))]

FLOW = '''\
"""A foreach with a join, a parameter, a static split merged back, and a
switch, on plain Python values."""
import sys

from metaflow import FlowSpec, Parameter, current, step


class PyenvSmokeFlow(FlowSpec):
    count = Parameter("count", default=3)
    label = Parameter("label", default="x")

    @step
    def start(self):
        self.python = "%d.%d" % sys.version_info[:2]
        self.items = list(range(1, self.count + 1))
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.sq = self.input * self.input
        print("square", self.input, self.sq)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = [i.sq for i in inputs]
        self.merge_artifacts(inputs, exclude=["sq"])
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "L"
        self.next(self.meet)

    @step
    def right(self):
        self.side = "R"
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = inputs.left.side + inputs.right.side
        self.merge_artifacts(inputs, exclude=["side"])
        self.mode = "even" if sum(inputs.left.squares) % 2 == 0 else "odd"
        self.next({"even": self.even, "odd": self.odd}, condition="mode")

    @step
    def even(self):
        self.parity = 0
        self.next(self.end)

    @step
    def odd(self):
        self.parity = 1
        self.next(self.end)

    @step
    def end(self):
        self.summary = {"python": self.python, "label": self.label, "total": sum(self.squares),
                        "sides": self.sides, "parity": self.parity,
                        "nested": (1, b"two", frozenset({3}), [None, 4.5])}
        self.where = current.step_name


if __name__ == "__main__":
    PyenvSmokeFlow()
'''

CLIENT = '''\
from metaflow import Flow, namespace
namespace(None)
for run in sorted(Flow("PyenvSmokeFlow").runs(), key=lambda r: r.id):
    d = run["end"].task.data
    squares = sorted(t.data.sq for t in run["square"].tasks())
    print(run.successful, d.summary, d.squares, squares, d.where,
          [s.id for s in run if s.id in ("even", "odd")])
    print("stdout:", sorted(t.stdout.strip() for t in run["square"].tasks()))
'''


@pytest.mark.parametrize("python", INTERPRETERS)
def test_pyenv_flow_and_client(tmp_path, python):
    env = env_for(tmp_path / ".metaflow", PYTHONPATH=PACKAGE_DIR)
    env.pop("PYTHONHOME", None)
    env.pop("VIRTUAL_ENV", None)
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    version = version.stdout.strip()
    (tmp_path / "smoke_flow.py").write_text(FLOW)
    for args in (["run", "--count", "3", "--label", "fork"],
                 ["run", "--count", "2", "--label", "proc", "--no-fork-server"]):
        p = subprocess.run([python, "smoke_flow.py"] + args, cwd=str(tmp_path), env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, "%s %s:\n%s\n%s" % (python, args, p.stdout, p.stderr)
    p = subprocess.run([python, "-c", CLIENT], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    nested = "(1, b'two', frozenset({3}), [None, 4.5])"
    assert p.stdout == (
        "True {'python': '%s', 'label': 'fork', 'total': 14, 'sides': 'LR', 'parity': 0, "
        "'nested': %s} [1, 4, 9] [1, 4, 9] end ['even']\n"
        "stdout: ['square 1 1', 'square 2 4', 'square 3 9']\n"
        "True {'python': '%s', 'label': 'proc', 'total': 5, 'sides': 'LR', 'parity': 1, "
        "'nested': %s} [1, 4] [1, 4] end ['odd']\n"
        "stdout: ['square 1 1', 'square 2 4']\n"
        % (version, nested, version, nested)), p.stdout
