"""The Python examples (examples/python/) run as a user runs them,
`python <example> run` in a fresh directory, and their results are checked
through the client."""
import json
import os
import subprocess

import pytest

from flowrunner import PYTHON, env_for, use_datastore

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                        "python")
ALL = ["helloworld.py", "train_sklearn.py", "cross_validation.py", "feature_store.py"]


def run_example(tmp_path, example, *args, timeout=300):
    """`python examples/python/<example> <args>` with tmp_path as the working
    directory and tmp_path/.metaflow as the datastore; must exit 0."""
    p = subprocess.run([PYTHON, os.path.join(EXAMPLES, example)] + list(args),
                       cwd=str(tmp_path), env=env_for(tmp_path / ".metaflow"),
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "%s %s exited %d\nstdout:\n%s\nstderr:\n%s" % (
        example, " ".join(args), p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture
def client(monkeypatch, tmp_path):
    use_datastore(monkeypatch, tmp_path)
    import metaflow
    metaflow.namespace("user:tester")
    return metaflow


def argmax(values):
    return max(range(len(values)), key=lambda i: (values[i], -i))


@pytest.mark.parametrize("example", ALL)
def test_examples_check(tmp_path, example):
    if example != "helloworld.py":
        pytest.importorskip("sklearn" if "sklearn" in example or "cross" in example
                            else "pandas")
    p = run_example(tmp_path, example, "check")
    assert "The graph looks good!" in p.stdout
    assert not (tmp_path / ".metaflow").exists()  # checking runs nothing


def test_helloworld(tmp_path, client):
    p = run_example(tmp_path, "helloworld.py", "run")
    assert "Metaflow says: Hi!" in p.stdout and "HelloFlow is all done." in p.stdout
    run = client.Flow("HelloFlow").latest_run
    assert run.successful and run.finished
    assert sorted(s.id for s in run) == ["end", "hello", "start"]
    hello = run["hello"].task
    assert hello.data.message == "Metaflow says: Hi!"
    assert "Metaflow says: Hi!" in hello.stdout
    assert run.data.message == "Metaflow says: Hi!"  # passed on to end
    p = run_example(tmp_path, "helloworld.py", "show")
    assert "Step hello" in p.stdout and "A flow where Metaflow prints 'Hi'." in p.stdout


def test_train_sklearn(tmp_path, client):
    pytest.importorskip("sklearn")
    p = run_example(tmp_path, "train_sklearn.py", "run")
    run = client.Flow("TrainFlow").latest_run
    assert run.successful
    end = run["end"].task.data
    # Measured 0.912 with the default parameters (sklearn 1.2, seed 42).
    assert end.accuracy > 0.85
    assert "accuracy %.4f" % end.accuracy in p.stdout
    model = run["train"].task.data.model
    assert type(model).__name__ == "RandomForestClassifier"
    assert model.n_estimators == 100 and len(model.estimators_) == 100
    start = run["start"].task.data
    assert start.X_train.shape == (1500, 20) and start.X_test.shape == (500, 20)
    # The stored model, read back, scores what the flow said it scored.
    assert float((model.predict(start.X_test) == start.y_test).mean()) == end.accuracy
    assert sum(map(sum, end.confusion)) == 500
    # Parameters change the run.
    run_example(tmp_path, "train_sklearn.py", "run", "--trees", "10", "--samples", "400")
    run2 = client.Flow("TrainFlow").latest_run
    assert run2.id != run.id
    assert len(run2["train"].task.data.model.estimators_) == 10
    assert run2["start"].task.data.X_test.shape == (100, 20)


def test_cross_validation(tmp_path, client):
    pytest.importorskip("sklearn")
    p = run_example(tmp_path, "cross_validation.py", "run")
    run = client.Flow("CrossValidationFlow").latest_run
    assert run.successful
    grid = run.data.grid
    folds = run.data.folds
    assert len(grid) == 4 and folds == 5
    fold_tasks = list(run["fold"].tasks())
    assert len(fold_tasks) == len(grid) * folds
    by_config = {}
    for t in fold_tasks:
        d = t.data
        by_config.setdefault(json.dumps(d.params, sort_keys=True), {})[d.fold_id] = d.score
    assert len(by_config) == len(grid)
    assert all(sorted(v) == list(range(folds)) for v in by_config.values())

    join_folds = list(run["join_folds"].tasks())
    assert len(join_folds) == len(grid)
    for t in join_folds:
        d = t.data
        scores = by_config[json.dumps(d.params, sort_keys=True)]
        assert d.fold_scores == [scores[k] for k in range(folds)]
        assert d.best_fold == argmax(d.fold_scores)
        assert d.mean_score == pytest.approx(sum(d.fold_scores) / folds)
        assert d.best_fold_model.max_depth == d.params["max_depth"]

    jg = run["join_grid"].task.data
    means = [r["mean_score"] for r in jg.results]
    assert [r["params"] for r in jg.results] == grid  # inputs in foreach order
    best = argmax(means)
    assert jg.best_params == grid[best]
    assert jg.best_cv_score == max(means)
    assert jg.best_cv_model.max_depth == jg.best_params["max_depth"]
    # Measured with the defaults: mean CV accuracy 0.615, 0.691, 0.755, 0.794
    # for max_depth 1, 3, 6, 12; test accuracy of the refit 0.787.
    assert jg.best_params == {"max_depth": 12}
    assert jg.best_cv_score > 0.75
    end = run["end"].task.data
    assert end.model.max_depth == jg.best_params["max_depth"]
    assert end.test_accuracy > 0.75
    assert "best {'max_depth': 12}" in p.stdout


def test_feature_store(tmp_path, client):
    pd = pytest.importorskip("pandas")
    run_example(tmp_path, "feature_store.py", "run", "--outdir", "out/feats")
    run = client.Flow("FeatureStoreFlow").latest_run
    assert run.successful
    events = run["start"].task.data.events
    assert len(events) == 500 * 40
    windows = run.data.windows
    assert windows == ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]
    assert len(list(run["featurize"].tasks())) == len(windows)
    # The expected rows: the (user, window) pairs with at least one event.
    day = (events["ts"] - pd.Timestamp("2024-01-01")).dt.days
    expected = events.assign(w=day // 7).groupby(["user_id", "w"]).ngroups
    assert 0 < expected < 500 * len(windows)  # some users idle in some windows

    path = tmp_path / "out" / "feats" / "user_features.csv"
    assert path.is_file() and not (tmp_path / "features").exists()
    table = pd.read_csv(path)
    assert len(table) == expected
    assert int(table["events"].sum()) == len(events)
    assert not table.duplicated(["window_start", "user_id"]).any()
    manifest = json.loads((tmp_path / "out" / "feats" / "manifest.json").read_text())
    assert manifest["run_id"] == run.id and manifest["rows"] == expected
    assert manifest["windows"] == windows
    validate = run["validate"].task.data
    assert validate.row_count == expected and all(validate.checks.values())
    assert len(validate.checks) == 9
    assert run.data.output_path == str(path)
    stored = run["join"].task.data.features
    assert list(stored.columns) == list(table.columns) and len(stored) == expected

    # The default output directory is ./features of the working directory.
    run_example(tmp_path, "feature_store.py", "run", "--window", "14", "--users", "50")
    table = pd.read_csv(tmp_path / "features" / "user_features.csv")
    run = client.Flow("FeatureStoreFlow").latest_run
    assert run.data.windows == ["2024-01-01", "2024-01-15"]
    ev = run["start"].task.data.events
    day = (ev["ts"] - pd.Timestamp("2024-01-01")).dt.days
    assert len(table) == ev.assign(w=day // 14).groupby(["user_id", "w"]).ngroups
