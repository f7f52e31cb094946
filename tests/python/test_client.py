"""The client API (metaflow.client) against datastores written through the
C API: hand-made runs (numpy, bytes, private artifacts, tags, two users,
foreach, retries, a failed, a crashed, a resumed and a live run) and runs
of the runtime with shell-command steps (logs, failure text, resume)."""
import hashlib
import os
import pickle
import subprocess
import sys
import time
from datetime import datetime

import pytest

import fixtures_client as F
from fixtures_client import L

np = pytest.importorskip("numpy")

from metaflow import client as C  # noqa: E402
from metaflow.exceptions import (MetaflowException, MetaflowInvalidPathspec,  # noqa: E402
                                 MetaflowNamespaceMismatch, MetaflowNotFound,
                                 MetaflowTaggingError)

VERSION = L.dec(L.lib.mf_version_string())
ARR = np.arange(100000, dtype=np.float64) * 0.5
SYS_ALICE = frozenset({"user:alice", "runtime:dev", "metaflow_version:libmetaflow-" + VERSION})


class Store:
    pass


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store()
    s.root = str(tmp_path_factory.mktemp("client") / ".metaflow")
    with F.Writer(s.root) as w:
        # ClientFlow: alice's first run, with everything.
        r = w.run("ClientFlow", "alice", tags=["exp1", "shared"])
        s.a1 = r.id
        start = r.task("start", {"x": 42, "arr": ARR, "blob": b"by\x00tes", "_p": "hidden",
                                 "text": "hello"},
                       raw={"j": ("json", b'{"k": [1, 2]}'), "s": ("str", b"text"),
                            "n": ("i64", (-5).to_bytes(8, sys.byteorder, signed=True))},
                       stdout="line one\nline two\n")
        bodies = [r.task("body", {"v": i * 10}, foreach=[(i, 3, str(i))],
                         inputs=["%s/start/%s" % (r.id, start)]) for i in range(3)]
        join = r.task("join", {"total": 30}, inputs=["%s/body/%s" % (r.id, b) for b in bodies])
        # a retried step: attempt 0 failed, attempt 1 succeeded
        r.task("retry", {"y": 0}, task_id="7", attempt=0, status=L.MF_TASK_FAILED)
        r.task("retry", {"y": 1}, task_id="7", attempt=1)
        r.task("end", {"x": 43, "result": {"a": [1, 2]}},
               inputs=["%s/join/%s" % (r.id, join)])
        r.finish()
        r.free()
        s.start, s.bodies, s.join = start, bodies, join
        # bob's run
        r = w.run("ClientFlow", "bob", tags=["shared"])
        s.b1 = r.id
        r.task("start", {"x": 7})
        r.task("end", {"x": 8})
        r.finish()
        r.free()
        # alice: a failed run (no end task)
        r = w.run("ClientFlow", "alice")
        s.failed = r.id
        r.task("start", {"x": 1})
        r.task("a", {"x": 2}, status=L.MF_TASK_FAILED)
        r.finish(L.MF_RUN_FAILED)
        r.free()
        # alice: a run whose process was SIGKILLed
        s.crashed = F.crashed_run(s.root, "ClientFlow", "alice")
        # alice: a run resuming her first one
        r = w.run("ClientFlow", "alice", origin=s.a1)
        s.resumed = r.id
        r.task("start", {"x": 100})
        r.task("end", {"x": 101})
        r.finish()
        r.free()
        # ShellFlow: the runtime, shell steps; then a resume fixing step a
        s.shell1, rc = F.runtime_run(w, "ShellFlow",
                                     [("start", "echo hi; echo err >&2"),
                                      ("a", "echo working; exit 3"), ("end", "true")], "alice")
        assert rc == L.MF_EFAILED
        s.shell2, rc = F.runtime_run(w, "ShellFlow",
                                     [("start", "echo hi; echo err >&2"),
                                      ("a", "echo fixed"), ("end", "true")], "alice",
                                     origin=s.shell1)
        assert rc == L.MF_OK
        # CatchFlow: step a fails, @catch stores the failure and the run goes on
        s.catch, rc = F.runtime_run(w, "CatchFlow",
                                    [("start", "true"), ("a", "echo boom >&2; exit 3"),
                                     ("end", "echo end ran")], "alice",
                                    attrs=[("a", "catch.var", "err")])
        assert rc == L.MF_OK
        # RetryFlow: step a fails on its first try and succeeds on the second
        s.retry, rc = F.runtime_run(w, "RetryFlow",
                                    [("start", "true"),
                                     ("a", "echo try {retry_count}; test {retry_count} -ge 1"),
                                     ("end", "true")], "alice",
                                    attrs=[("a", "retry.times", "2"),
                                           ("a", "retry.delay_seconds", "0")])
        assert rc == L.MF_OK
    return s


@pytest.fixture(autouse=True)
def env(store, monkeypatch):
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", os.path.dirname(store.root))
    monkeypatch.setenv("METAFLOW_USER", "alice")
    C.default_namespace()
    yield
    C.default_metadata()
    C.default_namespace()


# ------------------------------------------------------------ namespaces


def test_default_namespace_from_user(monkeypatch):
    assert C.get_namespace() == "user:alice"
    monkeypatch.delenv("METAFLOW_USER")
    monkeypatch.setenv("USER", "zed")
    assert C.default_namespace() == "user:zed"
    assert C.get_namespace() == "user:zed"
    assert C.namespace(None) is None
    assert C.get_namespace() is None
    assert C.namespace("user:bob") == "user:bob"
    monkeypatch.setenv("METAFLOW_USER", "alice")
    assert C.default_namespace() == "user:alice"


def test_namespace_is_lazy_default(monkeypatch):
    monkeypatch.setattr(C, "_current_namespace", False)
    monkeypatch.setenv("METAFLOW_USER", "carol")
    assert C.get_namespace() == "user:carol"


def test_flow_runs_by_namespace(store):
    f = C.Flow("ClientFlow")
    assert f.id == "ClientFlow" and f.pathspec == "ClientFlow"
    assert [r.id for r in f] == [store.resumed, store.crashed, store.failed, store.a1]
    assert f.latest_run.id == store.resumed
    assert f.latest_successful_run.id == store.resumed
    assert [r.id for r in f.runs("exp1")] == [store.a1]
    assert [r.id for r in f.runs("shared")] == [store.a1]
    assert list(f.runs("nope")) == []
    C.namespace("user:bob")
    f = C.Flow("ClientFlow")
    assert [r.id for r in f] == [store.b1]
    assert f.latest_run.id == store.b1
    C.namespace(None)
    f = C.Flow("ClientFlow")
    assert [r.id for r in f] == [store.resumed, store.crashed, store.failed, store.b1,
                                 store.a1]
    assert [r.id for r in f.runs("shared")] == [store.b1, store.a1]


def test_namespace_mismatch(store):
    with pytest.raises(MetaflowNamespaceMismatch) as e:
        C.Run("ClientFlow/%s" % store.b1)
    assert str(e.value) == "Object not in namespace 'user:alice'"
    for obj in (C.Step, C.Task, C.DataArtifact):
        path = "/".join(["ClientFlow", store.b1, "start", "1", "x"][:obj._DEPTH])
        with pytest.raises(MetaflowNamespaceMismatch):
            obj(path)
    with pytest.raises(MetaflowNamespaceMismatch):
        C.Flow("ClientFlow")["%s" % store.b1]
    C.namespace("user:carol")
    with pytest.raises(MetaflowNamespaceMismatch):
        C.Flow("ClientFlow")
    C.namespace(None)
    assert C.Run("ClientFlow/%s" % store.b1).data.x == 8
    assert C.Task("ClientFlow/%s/start/1" % store.b1).data.x == 7
    C.namespace("user:bob")
    run = C.Run("ClientFlow/%s" % store.b1)
    assert run.is_in_namespace()
    C.namespace("user:alice")
    assert not run.is_in_namespace()
    assert run.data.x == 8  # made in bob's namespace: its children follow it


def test_metaflow_flows(store):
    assert [f.id for f in C.Metaflow().flows] == ["CatchFlow", "ClientFlow", "RetryFlow", "ShellFlow"]
    C.namespace("user:bob")
    assert [f.id for f in C.Metaflow()] == ["ClientFlow"]
    assert C.Metaflow()["ClientFlow"].latest_run.id == store.b1
    assert str(C.Metaflow()) == "Metaflow()"


# -------------------------------------------------------------- not found


def test_not_found(store):
    with pytest.raises(MetaflowNotFound, match="Flow\\('NoSuchFlow'\\) does not exist"):
        C.Flow("NoSuchFlow")
    with pytest.raises(MetaflowNotFound, match="does not exist"):
        C.Run("ClientFlow/999")
    with pytest.raises(MetaflowNotFound):
        C.Run("ClientFlow/bad id!")
    with pytest.raises(MetaflowNotFound):
        C.Run("NoSuchFlow/1")
    with pytest.raises(MetaflowNotFound):
        C.Step("ClientFlow/%s/nostep" % store.a1)
    with pytest.raises(MetaflowNotFound):
        C.Task("ClientFlow/%s/start/99" % store.a1)
    with pytest.raises(MetaflowNotFound):
        C.DataArtifact("ClientFlow/%s/start/%s/nope" % (store.a1, store.start))
    f = C.Flow("ClientFlow")
    with pytest.raises(KeyError):
        f["999"]
    assert "999" not in f and store.a1 in f and store.b1 in f
    run = f[store.a1]
    with pytest.raises(KeyError):
        run["nostep"]
    with pytest.raises(KeyError):
        run["start"]["99"]
    with pytest.raises(KeyError):
        run["start"].task["nope"]
    for cls, spec in ((C.Flow, "A/B"), (C.Run, "ClientFlow"), (C.Step, "A/1"),
                      (C.Task, "A/1/s"), (C.DataArtifact, "A/1/s/1"), (C.Run, "A//")):
        with pytest.raises(MetaflowInvalidPathspec):
            cls(spec)
    assert issubclass(MetaflowNotFound, MetaflowException)


def test_exceptions_pickle():
    e = MetaflowNamespaceMismatch("user:bob")
    assert str(e) == "Object not in namespace 'user:bob'" and e.namespace == "user:bob"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is MetaflowNamespaceMismatch and str(again) == str(e)
    e = MetaflowNotFound("Run('A/1') does not exist")
    assert str(pickle.loads(pickle.dumps(e))) == "Run('A/1') does not exist"
    assert e.headline == "Object not found"


def test_no_datastore(tmp_path, monkeypatch):
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path / "missing"))
    with pytest.raises(MetaflowNotFound) as e:
        C.Flow("ClientFlow")
    assert "No Metaflow datastore found" in str(e.value)
    assert str(tmp_path / "missing") in str(e.value)
    assert not (tmp_path / "missing").exists()  # read-only never creates
    # nothing up from an empty directory either
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    parents = [os.path.join(str(p), ".metaflow") for p in [here] + list(here.parents)]
    if any(os.path.isdir(p) for p in parents):
        pytest.skip("a .metaflow directory exists above the test directory")
    monkeypatch.delenv("METAFLOW_DATASTORE_SYSROOT_LOCAL")
    monkeypatch.chdir(here)
    with pytest.raises(MetaflowNotFound, match="No Metaflow datastore found"):
        C.Metaflow().flows


def test_datastore_found_walking_up_and_reopened(store, tmp_path, monkeypatch):
    other = tmp_path / "proj" / ".metaflow"
    with F.Writer(str(other)) as w:
        r = w.run("OtherFlow", "alice")
        r.task("end", {"x": "other"})
        r.finish()
        r.free()
    assert [f.id for f in C.Metaflow()] == ["CatchFlow", "ClientFlow", "RetryFlow", "ShellFlow"]
    # $METAFLOW_DATASTORE_SYSROOT_LOCAL changed: the client opens the new root
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(other.parent))
    assert [f.id for f in C.Metaflow()] == ["OtherFlow"]
    assert C.get_metadata() == "local@%s" % other
    # unset: the nearest .metaflow up from the working directory
    monkeypatch.delenv("METAFLOW_DATASTORE_SYSROOT_LOCAL")
    sub = tmp_path / "proj" / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert C.Flow("OtherFlow").latest_run.data.x == "other"
    # metadata() picks a root explicitly
    assert C.metadata("local@%s" % store.root) == "local@%s" % store.root
    assert C.Flow("ClientFlow").latest_run.id == store.resumed
    assert C.default_metadata() == "local@%s" % other


# ------------------------------------------------------------------- runs


def test_run(store):
    run = C.Run("ClientFlow/%s" % store.a1)
    assert run.id == store.a1 and run.pathspec == "ClientFlow/" + store.a1
    assert run.path_components == ["ClientFlow", store.a1]
    assert repr(run) == "Run('ClientFlow/%s')" % store.a1
    assert run.parent.id == "ClientFlow"
    assert run.status == "succeeded"
    assert run.successful is True and run.finished is True
    assert run.tags == SYS_ALICE | {"exp1", "shared"}
    assert isinstance(run.tags, frozenset)
    assert run.system_tags == SYS_ALICE
    assert run.user_tags == frozenset({"exp1", "shared"})
    assert run.user == "alice"
    assert isinstance(run.created_at, datetime) and isinstance(run.finished_at, datetime)
    assert run.created_at <= run.finished_at
    assert abs((datetime.now() - run.created_at).total_seconds()) < 600
    assert [s.id for s in run] == ["end", "retry", "join", "body", "start"]
    assert [s.id for s in run.steps()] == ["end", "retry", "join", "body", "start"]
    assert "start" in run and "nostep" not in run
    assert run["start"].pathspec == "ClientFlow/%s/start" % store.a1
    assert run.end_task.pathspec == "ClientFlow/%s/end/%s" % (store.a1, run.end_task.id)
    assert run.data.x == 43 and run.data.result == {"a": [1, 2]}
    assert run.code is None and run.origin_pathspec is None


def test_failed_run(store):
    run = C.Run("ClientFlow/%s" % store.failed)
    assert run.status == "failed"
    assert run.successful is False and run.finished is False
    assert run.end_task is None and run.data is None
    assert isinstance(run.finished_at, datetime)
    a = run["a"].task
    # Metaflow's meaning: a failed attempt is neither successful nor finished
    assert a.successful is False and a.finished is False
    assert a.exception is None  # committed by hand: no failure text


def test_crashed_run(store):
    run = C.Run("ClientFlow/%s" % store.crashed)
    assert run.status == "crashed"
    assert run.successful is False and run.finished is False
    assert run.finished_at is None
    assert run["start"].task.data.x == 1
    assert run.tags == SYS_ALICE


def test_running_run(store):
    with F.Writer(store.root) as w:
        r = w.run("LiveFlow", "alice")
        try:
            r.task("start", {"x": 5})
            run = C.Flow("LiveFlow").latest_run
            assert run.id == r.id
            assert run.status == "running"
            assert run.successful is False and run.finished is False
            assert run.finished_at is None
            assert C.Flow("LiveFlow").latest_successful_run is None
            assert run["start"].task.data.x == 5
            r.task("end", {"x": 6})
            r.finish()
            assert run.status == "succeeded"  # the same object sees it finish
            assert run.successful and run.finished and run.finished_at is not None
            assert C.Flow("LiveFlow").latest_successful_run.id == r.id
        finally:
            r.free()


def test_resumed_run_origin(store):
    run = C.Run("ClientFlow/%s" % store.resumed)
    assert run.origin_pathspec == "ClientFlow/%s" % store.a1
    assert run["start"].origin_pathspec == "ClientFlow/%s/start" % store.a1
    assert run["start"].task.origin_pathspec is None  # not cloned, ran again
    assert run.data.x == 101


# ------------------------------------------------------------ steps, tasks


def test_step_and_foreach_tasks(store):
    step = C.Step("ClientFlow/%s/body" % store.a1)
    assert step.id == "body" and step.parent.id == store.a1
    assert [t.id for t in step] == list(reversed(store.bodies))
    assert [t.id for t in step.tasks()] == list(reversed(store.bodies))
    assert [t.index for t in step] == [2, 1, 0]
    assert [t.data.v for t in step] == [20, 10, 0]
    t0 = step[store.bodies[0]]
    assert t0.foreach_stack() == [(0, 3, "0")]
    assert t0.index == 0 and t0.data.v == 0
    assert step.task.id == store.bodies[-1]
    assert store.bodies[1] in step and "99" not in step
    assert C.Task("ClientFlow/%s/start/%s" % (store.a1, store.start)).index is None
    join = C.Run("ClientFlow/%s" % store.a1)["join"].task
    assert list(join.parent_task_pathspecs) == ["ClientFlow/%s/body/%s" % (store.a1, b)
                                                for b in store.bodies]
    assert [t.data.v for t in join.parent_tasks] == [0, 10, 20]
    assert isinstance(step.finished_at, datetime) and isinstance(step.created_at, datetime)
    assert step.created_at <= step.finished_at


def test_task(store):
    path = "ClientFlow/%s/start/%s" % (store.a1, store.start)
    t = C.Task(path)
    assert t.id == store.start and t.pathspec == path
    assert t.parent.pathspec == "ClientFlow/%s/start" % store.a1
    assert t.parent.parent.id == store.a1
    assert t.successful is True and t.finished is True
    assert t.exception is None and t.current_attempt == 0
    assert t.origin_pathspec is None
    assert t.tags == SYS_ALICE | {"exp1", "shared"}
    assert t.metadata_dict == {"attempt": "0"}
    assert t.runtime_name == "dev"
    assert t.code is None
    assert isinstance(t.created_at, datetime) and isinstance(t.finished_at, datetime)
    assert t.created_at <= t.finished_at
    run = C.Run("ClientFlow/%s" % store.a1)
    assert run.created_at <= t.created_at and t.finished_at <= run.finished_at
    assert t.stdout == "line one\nline two\n"
    assert t.stderr == ""
    assert t.stdout_size == len("line one\nline two\n")
    lines = list(t.loglines("stdout"))
    assert [text for _, text in lines] == ["line one", "line two"]
    assert all(isinstance(when, datetime) for when, _ in lines)


def test_task_attempts(store):
    path = "ClientFlow/%s/retry/7" % store.a1
    t = C.Task(path)
    assert t.current_attempt == 1 and t.successful and t.data.y == 1
    t0 = C.Task(path, attempt=0)
    assert repr(t0) == "Task('%s', attempt=0)" % path
    assert t0.current_attempt == 0
    assert t0.successful is False and t0.finished is False and t0.data.y == 0
    assert C.DataArtifact(path + "/y", attempt=0).data == 0
    assert C.DataArtifact(path + "/y").data == 1
    assert t0["y"].data == 0
    with pytest.raises(MetaflowNotFound):
        C.Task(path, attempt=5)
    with pytest.raises(MetaflowNotFound):
        C.Run("ClientFlow/%s" % store.a1, attempt=0)


# -------------------------------------------------------------- artifacts


def test_data_lazy_and_private(store):
    t = C.Task("ClientFlow/%s/start/%s" % (store.a1, store.start))
    data = t.data
    assert data.x == 42 and data.text == "hello"
    assert "x" in data and "_p" not in data and "nope" not in data
    assert "x" in dir(data)
    assert str(data) == "<MetaflowData: arr, blob, j, n, s, text, x>"
    with pytest.raises(AttributeError):
        data.nope
    names = [a.id for a in t]
    assert names == ["arr", "blob", "j", "n", "s", "text", "x"]
    # private artifacts: hidden from listings, loadable by name
    assert "_p" in t and "nope" not in t
    assert t["_p"].data == "hidden"
    assert data._p == "hidden"
    assert C.DataArtifact("ClientFlow/%s/start/%s/_p" % (store.a1, store.start)).data == "hidden"
    arts = t.artifacts
    assert len(arts) == 7 and arts.x.data == 42
    assert [a.id for a in arts] == names
    with pytest.raises(AttributeError):
        arts._p


def test_numpy_zero_copy_read_only(store):
    t = C.Task("ClientFlow/%s/start/%s" % (store.a1, store.start))
    arr = t.data.arr
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64
    assert np.array_equal(arr, ARR)
    assert arr.flags.writeable is False
    with pytest.raises(ValueError):
        arr[0] = 1.0
    # zero-copy: the array's bytes are a file mapping of a blob in the store
    addr = arr.__array_interface__["data"][0]
    blobs = os.path.realpath(os.path.join(store.root, "data"))
    mapped = None
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= addr < hi:
                mapped = fields[5].strip() if len(fields) > 5 else ""
                assert addr + arr.nbytes <= hi
                break
    assert mapped and mapped.startswith(blobs + "/"), mapped


def test_bytes_and_other_encodings(store):
    t = C.Task("ClientFlow/%s/start/%s" % (store.a1, store.start))
    assert t.data.blob == b"by\x00tes" and type(t.data.blob) is bytes
    assert t.data.j == {"k": [1, 2]}
    assert t.data.s == "text"
    assert t.data.n == -5
    assert t["j"].encoding == "json" and t["blob"].encoding == "pickle5"


def test_data_artifact(store):
    path = "ClientFlow/%s/start/%s" % (store.a1, store.start)
    a = C.DataArtifact(path + "/x")
    assert a.id == "x" and a.pathspec == path + "/x" and a.data == 42
    main = pickle.dumps(42, protocol=5)
    assert a.sha == hashlib.sha256(main).hexdigest()
    assert a.size == len(main)
    arr = C.Task(path)["arr"]
    main, bufs = F.artifacts.dumps(ARR, "arr")
    assert arr.sha == hashlib.sha256(main).hexdigest()
    assert arr.size == len(main) + ARR.nbytes
    task = C.Task(path)
    assert a.finished_at == task.finished_at and a.created_at == task.finished_at
    assert a.parent.pathspec == path
    assert a.tags == SYS_ALICE | {"exp1", "shared"}
    assert repr(a) == "DataArtifact('%s/x')" % path


def test_pickle_client_objects(store):
    run = C.Run("ClientFlow/%s" % store.a1)
    again = pickle.loads(pickle.dumps(run))
    assert again.pathspec == run.pathspec and again.data.x == 43
    task = pickle.loads(pickle.dumps(C.Task(run.end_task.pathspec)))
    assert task.data.x == 43


# ----------------------------------------------------------------- tags


def test_tags_mutation(store):
    with F.Writer(store.root) as w:
        r = w.run("TagFlow", "alice", tags=["t1"])
        r.task("end", {"x": 1})
        r.finish()
        r.free()
    run = C.Flow("TagFlow").latest_run
    assert run.user_tags == {"t1"}
    run.add_tag("t2")
    assert run.user_tags == {"t1", "t2"}
    assert C.Run(run.pathspec).user_tags == {"t1", "t2"}
    run.remove_tag("t1")
    assert run.user_tags == {"t2"}
    run.replace_tag("t2", "t3")
    assert run.user_tags == {"t3"}
    run.add_tags(["a", "b"])
    run.remove_tags(["a", "missing"])
    assert run.user_tags == {"b", "t3"}
    run.replace_tags(["b"], ["c", "d"])
    assert C.Run(run.pathspec).user_tags == {"c", "d", "t3"}
    assert run.tags == SYS_ALICE | {"c", "d", "t3"}
    run.add_tag("user:alice")  # already a system tag: not added, no error
    assert run.user_tags == {"c", "d", "t3"}
    with pytest.raises(MetaflowTaggingError):
        run.remove_tag("user:alice")
    with pytest.raises(MetaflowTaggingError):
        run.add_tag("")
    assert run.system_tags == SYS_ALICE
    assert [x.id for x in C.Flow("TagFlow").runs("t3", "d")] == [run.id]
    assert list(C.Flow("TagFlow").runs("t1")) == []


# ---------------------------------------------------- runtime-made runs


def test_runtime_run_logs_and_failure(store):
    run = C.Run("ShellFlow/%s" % store.shell1)
    assert run.status == "failed"
    assert run.successful is False and run.finished is False
    assert [s.id for s in run] == ["a", "start"]
    start = run["start"].task
    assert start.id == "1"
    assert start.stdout == "hi\n"
    assert start.stderr == "err\n"
    assert start.successful and start.exception is None
    a = run["a"].task
    assert a.id == "2" and a.successful is False
    assert a.stdout == "working\n"
    assert a.exception == ("step 'a' task 2 attempt 0 failed: exit code 3\n"
                           "  last lines of its stdout:\n    working")


def test_runtime_resume(store):
    run = C.Run("ShellFlow/%s" % store.shell2)
    assert run.status == "succeeded" and run.successful and run.finished
    assert run.origin_pathspec == "ShellFlow/%s" % store.shell1
    start = run["start"].task
    assert start.origin_pathspec == "ShellFlow/%s/start/1" % store.shell1
    assert start.metadata_dict == {"attempt": "0", "origin-run-id": store.shell1,
                                   "origin-task-id": "1"}
    assert start.stdout == "hi\n" and start.stderr == "err\n"  # the origin's logs
    a = run["a"].task
    assert a.origin_pathspec is None and a.stdout == "fixed\n"
    assert C.Flow("ShellFlow").latest_successful_run.id == store.shell2


def test_runtime_retry(store):
    a = C.Run("RetryFlow/%s" % store.retry)["a"].task
    assert a.current_attempt == 1 and a.successful and a.finished
    assert a.exception is None and a.stdout == "try 1\n"
    first = C.Task(a.pathspec, attempt=0)
    assert first.successful is False and first.finished is False
    assert first.stdout == "try 0\n"
    assert first.exception == ("step 'a' task 2 attempt 0 failed: exit code 1\n"
                               "  last lines of its stdout:\n    try 0")


def test_runtime_caught_failure(store):
    run = C.Run("CatchFlow/%s" % store.catch)
    assert run.status == "succeeded" and run.successful and run.finished
    a = run["a"].task
    # Metaflow's meaning: a caught failure finished, but did not succeed
    assert a.finished is True and a.successful is False
    assert a.current_attempt == 1  # the failed try, then the attempt that caught it
    assert a.exception == ("step 'a' task 2 attempt 0 failed: exit code 3\n"
                           "  last lines of its stderr:\n    boom")
    assert a.data.err["exit_code"] == 3 and "boom" in a.data.err["message"]
    first = C.Task(a.pathspec, attempt=0)
    assert first.finished is False and first.successful is False
    assert first.stderr == "boom\n"
    assert run["end"].task.successful and run["end"].task.stdout == "end ran\n"
    assert run.data.err["exit_code"] == 3  # passed on to the end step


# ------------------------------------------------- handles, fork, threads


def test_handles_are_freed(store, tmp_path, monkeypatch):
    counts = {}

    def counting(name):
        fn = getattr(L.lib, name)

        def wrapper(*args):
            counts[name] = counts.get(name, 0) + 1
            return fn(*args)
        monkeypatch.setattr(L.lib, name, wrapper)

    for name in ("mf_engine_open", "mf_engine_free", "mf_run_open", "mf_run_free",
                 "mf_task_open", "mf_task_free", "mf_task_artifact", "mf_artifact_free"):
        counting(name)
    other = str(tmp_path / ".metaflow")
    with F.Writer(other) as w:
        r = w.run("OtherFlow", "alice")
        r.task("end", {"x": np.arange(10)})
        r.finish()
        r.free()
    counts.clear()
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", os.path.dirname(other))
    run = C.Flow("OtherFlow").latest_run
    arr = run.data.x
    task = run.end_task
    assert task["x"].size > 0 and [a.id for a in task] == ["x"]
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", os.path.dirname(store.root))
    assert C.Run("ClientFlow/%s" % store.a1).data.x == 43  # a second engine
    del run, task
    import gc
    gc.collect()
    assert counts["mf_run_open"] == counts["mf_run_free"] >= 2
    assert counts["mf_task_open"] == counts["mf_task_free"] >= 2
    # the array keeps its artifact (and mapping) alive, not the engine
    assert counts["mf_task_artifact"] == counts["mf_artifact_free"] + 1
    assert counts["mf_engine_open"] == 2 and counts.get("mf_engine_free") == 1
    assert int(arr.sum()) == 45
    del arr
    gc.collect()
    assert counts["mf_task_artifact"] == counts["mf_artifact_free"]


def test_objects_survive_fork(store):
    run = C.Run("ClientFlow/%s" % store.a1)
    task = run["start"].task
    assert task.data.x == 42
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            out = "%s %s %s" % (run.data.x, task.data.x, run.status)  # reopened here
            os.write(wfd, out.encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        got = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert got == "43 42 succeeded"
    assert task.data.x == 42 and run.status == "succeeded"  # the parent's still work


def test_threads_share_objects(store):
    import threading

    task = C.Task("ClientFlow/%s/start/%s" % (store.a1, store.start))
    run = C.Run("ClientFlow/%s" % store.a1)
    errors = []

    def work():
        try:
            for _ in range(50):
                assert task.data.x == 42 and task.data.arr[3] == 1.5
                assert run.status == "succeeded" and "exp1" in run.tags
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -------------------------------------------------------- cold start


def test_one_liner_in_fresh_process(store):
    code = ("import sys, time; t = time.perf_counter()\n"
            "from metaflow import Flow\n"
            "x = Flow('ClientFlow').latest_run['end'].task.data.x\n"
            "print(x, round(time.perf_counter() - t, 4))\n"
            "print(sorted(m for m in ('numpy', 'datetime', 'json', 'threading')"
            " if m in sys.modules))\n")
    env = dict(os.environ, PYTHONPATH=F._PKG)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    took = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first.split()[0] == "101"
    assert "numpy" not in second and "datetime" not in second
    assert took < 5.0


def test_no_child_processes_left():
    me = str(os.getpid())
    children = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                children.append(pid)
    assert children == []
