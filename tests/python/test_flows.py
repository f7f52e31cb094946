"""Flows run through `python flow.py ...`, checked through the client and
the command line."""
import os
import signal
import subprocess
import sys
import time

import pytest

from flowrunner import FLOWS, PYTHON, env_for, run_flow, use_datastore


@pytest.fixture
def client(monkeypatch, tmp_path):
    use_datastore(monkeypatch, tmp_path)
    import metaflow
    metaflow.namespace("user:tester")
    return metaflow


@pytest.mark.parametrize("fork_server", [True, False])
def test_basics_parameters_and_artifacts(tmp_path, client, fork_server):
    (tmp_path / "notes.txt").write_text("line one\nline two\n")
    args = ["run", "--label", "L1", "--count", "4", "--flag", "true", "--names", "a,b,c",
            "--max_depth", "5", "--notes", str(tmp_path / "notes.txt")]
    if not fork_server:
        args.append("--no-fork-server")
    p = run_flow(tmp_path, "basics_flow.py", *args, check=True)
    assert "summary L1:4:True:1:a+b+c:3.0:5" in p.stdout
    run = client.Flow("BasicsFlow").latest_run
    assert run.successful and run.status == "succeeded"
    end = run["end"].task
    assert end.data.numbers == [0, 1, 2, 3]
    assert end.data.blob == bytes(range(256)) * 8
    assert end.data.nested == {"k": [1, 2, {"z": None}], "t": (1, "two")}
    assert end.data.count == 4 and end.data.ratio == 0.5 and end.data.flag is True
    assert end.data.config == {"a": 1}
    assert end.data.names == ["a", "b", "c"]
    assert end.data.notes == "line one\nline two\n"  # IncludeFile: the file's text
    start = run["start"].task
    assert "read-only" in start.data.param_write
    assert "constant" in start.data.const_write
    assert start.data.where == "BasicsFlow/%s/start/%s" % (run.id, start.id)
    names = {a.id for a in start.artifacts}
    assert "_secret" not in names and "helper" not in names and "numbers" in names
    assert start["_secret"].data == "hidden"


def test_parameter_errors(tmp_path):
    p = run_flow(tmp_path, "basics_flow.py", "run", check=False)
    assert p.returncode == 1
    assert "parameter 'label' is required" in p.stderr
    p = run_flow(tmp_path, "basics_flow.py", "run", "--label", "x", "--count", "many",
                 check=False)
    assert p.returncode == 1
    assert "parameter 'count' (int): invalid value 'many'" in p.stderr
    p = run_flow(tmp_path, "basics_flow.py", "run", env={"METAFLOW_RUN_LABEL": "from-env"},
                 check=True)
    assert "summary from-env:3:" in p.stdout
    # Metaflow's spelling of an option is its name; no abbreviations.
    p = run_flow(tmp_path, "basics_flow.py", "run", "--label", "x", "--max-depth", "7",
                 check=True)
    assert p.stdout.rstrip().endswith(":7") or ":7\n" in p.stdout
    p = run_flow(tmp_path, "basics_flow.py", "run", "--label", "x", "--max", "7", check=False)
    assert p.returncode != 0


def test_shapes(tmp_path, client):
    run_flow(tmp_path, "shapes_flow.py", "run", check=True)
    run = client.Flow("ShapesFlow").latest_run
    meet = run["meet"].task.data
    assert meet.sides == "LR" and meet.order == ["L", "R"]
    assert meet.shared == "same" and meet.only_left == 1 and meet.shared_seen == "same!"
    end = run["end"].task.data
    assert end.grid == [["p1", "p2", "p3"], ["q1", "q2", "q3"]]
    assert end.path == "big"
    assert len(list(run["inner"].tasks())) == 6
    cells = {t.data.cell: (t.data.stack, t.data.position) for t in run["inner"].tasks()}
    stack, pos = cells["q3"]
    assert pos == 2 and [s[:2] for s in stack] == [(1, 2), (2, 3)]
    assert [s.id for s in run] and "small" not in [s.id for s in run]


def test_show_check_and_bad_graph(tmp_path):
    p = run_flow(tmp_path, "shapes_flow.py", "show", check=True)
    assert "Step meet" in p.stdout and "=> fan (foreach over letters)" in p.stdout
    p = run_flow(tmp_path, "shapes_flow.py", "check", check=True)
    assert "The graph looks good!" in p.stdout
    p = run_flow(tmp_path, "badgraph_flow.py", "check", check=False)
    assert p.returncode == 1
    assert "'end'" in p.stderr and "join" in p.stderr
    p = run_flow(tmp_path, "badgraph_flow.py", "run", check=False)
    assert p.returncode == 1 and not (tmp_path / ".metaflow" / "BadGraphFlow").exists()


def test_unpicklable_artifact(tmp_path, client):
    p = run_flow(tmp_path, "unpicklable_flow.py", "run", check=False)
    assert p.returncode == 1
    assert "artifact 'lock' cannot be pickled" in p.stderr + p.stdout
    run = client.Flow("UnpicklableFlow").latest_run
    assert run.status == "failed"


def test_failure_retry_catch_and_resume(tmp_path, client):
    env = {"MF_TEST_DIR": str(tmp_path)}
    p = run_flow(tmp_path, "failing_flow.py", "run", env=env, check=False)
    assert p.returncode == 1
    assert "item 2 is broken" in p.stderr
    assert "step 'work'" in p.stderr and "attempt 2" in p.stderr
    runs = lambda i: (tmp_path / ("work.%d.runs" % i)).read_text().count("x")  # noqa: E731
    assert (runs(0), runs(1), runs(2)) == (1, 2, 3)
    first = client.Flow("FailingFlow").latest_run
    assert first.status == "failed" and not first.successful and not first.finished
    env["MF_TEST_FIXED"] = "1"
    p = run_flow(tmp_path, "failing_flow.py", "resume", "--origin-run-id", first.id, env=env,
                 check=True)
    assert (runs(0), runs(1), runs(2)) == (1, 2, 4)  # only item 2 ran again
    run = client.Flow("FailingFlow").latest_run
    assert run.id != first.id and run.successful
    assert run["end"].task.data.values == [0, 10, 20]
    caught = run["risky"].task.data.risk_error
    assert "KeyError" in str(caught) and "caught, not fatal" in str(caught)


def test_timeout(tmp_path):
    env = {"MF_TEST_DIR": str(tmp_path), "MF_TEST_FIXED": "1", "MF_TEST_TIMEOUT": "1",
           "MF_TEST_SLEEP": "30"}
    t0 = time.time()
    p = run_flow(tmp_path, "failing_flow.py", "run", env=env, check=False)
    assert p.returncode == 1
    assert time.time() - t0 < 20
    assert "timed out" in p.stderr


def test_sigkill_runtime_then_resume(tmp_path, client):
    env = env_for(tmp_path / ".metaflow", MF_TEST_DIR=str(tmp_path), MF_TEST_FIXED="1",
                  MF_TEST_SLEEP="60")
    proc = subprocess.Popen([PYTHON, os.path.join(FLOWS, "failing_flow.py"), "run"],
                            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    seen = ""
    while "[" not in seen or "/slow/" not in seen:
        line = proc.stdout.readline()
        seen += line
        assert time.time() < deadline and line, seen
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = client.Flow("FailingFlow").latest_run
    assert run.status == "crashed"
    env["MF_TEST_SLEEP"] = "0"
    p = subprocess.run([PYTHON, os.path.join(FLOWS, "failing_flow.py"), "resume",
                        "--origin-run-id", run.id], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    runs = lambda i: (tmp_path / ("work.%d.runs" % i)).read_text().count("x")  # noqa: E731
    assert (runs(0), runs(1), runs(2)) == (1, 2, 1)  # nothing that succeeded ran again
    assert client.Flow("FailingFlow").latest_run.successful


def test_logs_dump_tags_and_version(tmp_path, client):
    run_flow(tmp_path, "basics_flow.py", "run", "--label", "z", "--tag", "first", check=True)
    run = client.Flow("BasicsFlow").latest_run
    end = run["end"].task
    assert "summary z:3:" in end.stdout
    p = run_flow(tmp_path, "basics_flow.py", "logs", "%s/end/%s" % (run.id, end.id),
                 check=True)
    assert "summary z:3:" in p.stdout
    p = run_flow(tmp_path, "basics_flow.py", "dump", "%s/end/%s" % (run.id, end.id),
                 "--include", "count,label", check=True)
    assert "count: 3" in p.stdout and "label: 'z'" in p.stdout
    p = run_flow(tmp_path, "basics_flow.py", "tag", "add", "--run-id", run.id, "second",
                 check=True)
    assert "first" in p.stdout and "second" in p.stdout
    assert "second" in client.Run("BasicsFlow/%s" % run.id).tags
    p = run_flow(tmp_path, "basics_flow.py", "version", check=True)
    assert "libmetaflow" in p.stdout
    p = run_flow(tmp_path, "basics_flow.py", "--datastore", "gs", "run", check=False)
    assert p.returncode == 1 and "--datastore gs is not supported" in p.stderr
    p = run_flow(tmp_path, "basics_flow.py", "--datastore", "s3", "run", check=False,
                 env={"METAFLOW_DATASTORE_SYSROOT_S3": ""})
    assert p.returncode == 1 and "METAFLOW_DATASTORE_SYSROOT_S3" in p.stderr


def test_numpy_zero_copy(tmp_path, client):
    np = pytest.importorskip("numpy")
    flow = tmp_path / "np_flow.py"
    flow.write_text(
        "import numpy as np\n"
        "from metaflow import FlowSpec, step\n"
        "class NpFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.arr = np.arange(1 << 20, dtype=np.float64)\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        assert not self.arr.flags.writeable\n"
        "        self.total = float(self.arr.sum())\n"
        "if __name__ == '__main__':\n"
        "    NpFlow()\n")
    env = env_for(tmp_path / ".metaflow")
    p = subprocess.run([PYTHON, str(flow), "run"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    run = client.Flow("NpFlow").latest_run
    arr = run["start"].task.data.arr
    assert arr.shape == (1 << 20,) and not arr.flags.writeable
    assert float(arr.sum()) == run["end"].task.data.total
    with pytest.raises(ValueError):
        arr[0] = 1.0


def test_named_start_and_end(tmp_path, client):
    run_flow(tmp_path, "named_ends_flow.py", "run", check=True)
    run = client.Flow("NamedEndsFlow").latest_run
    assert run.successful and run.data.x == 20
    assert sorted(s.id for s in run) == ["end", "middle", "start"]


def test_step_must_end_with_next(tmp_path):
    flow = tmp_path / "nonext_flow.py"
    flow.write_text(
        "from metaflow import FlowSpec, step\n"
        "class NoNextFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n"
        "        self.x = 1\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    NoNextFlow()\n")
    env = env_for(tmp_path / ".metaflow")
    p = subprocess.run([PYTHON, str(flow), "check"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "step 'start' must end with self.next(...)" in p.stderr
