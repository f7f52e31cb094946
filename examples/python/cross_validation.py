"""CrossValidationFlow: pick hyperparameters by k-fold cross-validation.

    start       generate a synthetic classification dataset, hold out a
                test part, cut the rest into k folds
    candidate   (foreach over the hyperparameter grid) one configuration
    fold        (foreach over the folds) train on k-1 folds, score the
                model on the fold left out
    join_folds  the fold scores of one configuration: their mean, and the
                fold whose model scored best
    join_grid   the configuration with the best mean score wins
    refit       train the winner on all the training data, score it on
                the test part
    end         report

Every fold of every configuration is a task of its own (4 x 5 = 20 here),
run in parallel:

    python cross_validation.py run --folds 5 --max-workers 8
"""
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from metaflow import FlowSpec, JSONType, Parameter, step


def make_model(params, seed):
    return RandomForestClassifier(n_estimators=50, random_state=seed, **params)


def argmax(values):
    """Index of the largest value (the first one on a tie)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


class CrossValidationFlow(FlowSpec):
    """Grid search with k-fold cross-validation, one task per (config, fold)."""

    folds = Parameter("folds", default=5, help="number of folds (k)")
    grid = Parameter("grid", type=JSONType,
                     default='[{"max_depth": 1}, {"max_depth": 3}, '
                             '{"max_depth": 6}, {"max_depth": 12}]',
                     help="hyperparameter configurations (JSON list of dicts)")
    samples = Parameter("samples", default=1500, help="rows of synthetic data")
    seed = Parameter("seed", default=7, help="random seed")

    @step
    def start(self):
        """Make the data and the folds."""
        X, y = make_classification(n_samples=self.samples, n_features=20, n_informative=6,
                                   n_redundant=4, flip_y=0.05, random_state=self.seed)
        self.X_train, self.X_test, self.y_train, self.y_test = train_test_split(
            X, y, test_size=0.2, stratify=y, random_state=self.seed)
        kfold = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=self.seed)
        self.fold_indices = [valid for _, valid in kfold.split(self.X_train, self.y_train)]
        self.configs = list(self.grid)
        self.next(self.candidate, foreach="configs")

    @step
    def candidate(self):
        """One hyperparameter configuration: cross-validate it."""
        self.params = self.input
        self.fold_ids = list(range(len(self.fold_indices)))
        self.next(self.fold, foreach="fold_ids")

    @step
    def fold(self):
        """Train without fold k, score on fold k."""
        self.fold_id = self.input
        valid = self.fold_indices[self.fold_id]
        train = np.setdiff1d(np.arange(len(self.y_train)), valid)
        self.model = make_model(self.params, self.seed)
        self.model.fit(self.X_train[train], self.y_train[train])
        self.score = float(accuracy_score(self.y_train[valid],
                                          self.model.predict(self.X_train[valid])))
        print("%s fold %d: %.4f" % (self.params, self.fold_id, self.score))
        self.next(self.join_folds)

    @step
    def join_folds(self, inputs):
        """The scores of one configuration, and its best fold."""
        self.fold_scores = [inp.score for inp in inputs]
        self.mean_score = sum(self.fold_scores) / len(self.fold_scores)
        self.best_fold = argmax(self.fold_scores)
        self.best_fold_model = inputs[self.best_fold].model
        self.merge_artifacts(inputs, exclude=["fold_id", "model", "score"])
        self.next(self.join_grid)

    @step
    def join_grid(self, inputs):
        """The configuration with the best mean cross-validation score."""
        self.results = [{"params": inp.params, "mean_score": inp.mean_score,
                         "fold_scores": inp.fold_scores, "best_fold": inp.best_fold}
                        for inp in inputs]
        best = argmax([r["mean_score"] for r in self.results])
        self.best_params = self.results[best]["params"]
        self.best_cv_score = self.results[best]["mean_score"]
        self.best_cv_model = inputs[best].best_fold_model
        self.merge_artifacts(inputs, exclude=["params", "fold_scores", "mean_score",
                                              "best_fold", "best_fold_model"])
        self.next(self.refit)

    @step
    def refit(self):
        """Train the winning configuration on all the training data."""
        self.model = make_model(self.best_params, self.seed)
        self.model.fit(self.X_train, self.y_train)
        self.test_accuracy = float(accuracy_score(self.y_test, self.model.predict(self.X_test)))
        self.next(self.end)

    @step
    def end(self):
        """Report."""
        for r in self.results:
            print("%-20s mean %.4f  folds %s" % (r["params"], r["mean_score"],
                                                 " ".join("%.3f" % s for s in r["fold_scores"])))
        print("best %s: cv %.4f, test accuracy %.4f"
              % (self.best_params, self.best_cv_score, self.test_accuracy))


if __name__ == "__main__":
    CrossValidationFlow()
