"""TrainFlow: train and evaluate a scikit-learn classifier.

    start     generate a synthetic classification dataset
              (sklearn.datasets.make_classification) and split it
    train     fit a random forest on the training part
    evaluate  score it on the held-out part
    end       report

The fitted model and its test accuracy are artifacts of the run:

    python train_sklearn.py run --trees 200
    python -c "from metaflow import Flow; print(Flow('TrainFlow').latest_run.data.accuracy)"
"""
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.model_selection import train_test_split

from metaflow import FlowSpec, Parameter, step


class TrainFlow(FlowSpec):
    """Train a random forest on synthetic data and keep it with its score."""

    samples = Parameter("samples", default=2000, help="rows of synthetic data")
    features = Parameter("features", default=20, help="columns of synthetic data")
    trees = Parameter("trees", default=100, help="trees in the forest")
    seed = Parameter("seed", default=42, help="random seed of the data and the model")

    @step
    def start(self):
        """Make the data set and split it into train and test parts."""
        X, y = make_classification(n_samples=self.samples, n_features=self.features,
                                   n_informative=max(2, self.features // 2),
                                   n_redundant=2, class_sep=1.0, random_state=self.seed)
        self.X_train, self.X_test, self.y_train, self.y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=self.seed)
        print("train %s, test %s" % (self.X_train.shape, self.X_test.shape))
        self.next(self.train)

    @step
    def train(self):
        """Fit the model."""
        self.model = RandomForestClassifier(n_estimators=self.trees,
                                            random_state=self.seed)
        self.model.fit(self.X_train, self.y_train)
        self.next(self.evaluate)

    @step
    def evaluate(self):
        """Score the model on the test part."""
        predicted = self.model.predict(self.X_test)
        self.accuracy = float(accuracy_score(self.y_test, predicted))
        self.confusion = confusion_matrix(self.y_test, predicted).tolist()
        self.next(self.end)

    @step
    def end(self):
        """Report."""
        print("accuracy %.4f" % self.accuracy)
        print("confusion matrix %s" % self.confusion)


if __name__ == "__main__":
    TrainFlow()
