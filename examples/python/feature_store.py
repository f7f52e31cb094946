"""FeatureStoreFlow: populate a feature store from raw user events.

    start     generate synthetic user events (pandas): views, clicks,
              add-to-carts and purchases of USERS users over DAYS days
    featurize (foreach over time windows) per-user features of one window
    join      the windows' features, one table
    validate  checks the table (keys unique, no gaps, counts consistent
              with the raw events); a failed check stops the flow before
              anything is written
    write     writes the table to OUTDIR/user_features.csv, with a
              manifest (OUTDIR/manifest.json) naming the run that made it
    end       report

    python feature_store.py run --outdir ./features --window 7
"""
import json
import os

import numpy as np
import pandas as pd

from metaflow import FlowSpec, Parameter, current, step

EVENT_TYPES = ["view", "click", "add_to_cart", "purchase"]
EVENT_WEIGHTS = [0.6, 0.25, 0.1, 0.05]


class FeatureStoreFlow(FlowSpec):
    """Per-user, per-window features from raw events, validated, written."""

    outdir = Parameter("outdir", default="./features",
                       help="directory the feature table is written to")
    users = Parameter("users", default=500, help="number of synthetic users")
    days = Parameter("days", default=28, help="days of synthetic events")
    window = Parameter("window", default=7, help="days per feature window")
    seed = Parameter("seed", default=1, help="random seed of the events")

    @step
    def start(self):
        """Generate the raw events, and the windows to compute."""
        rng = np.random.default_rng(self.seed)
        n = self.users * 40
        t0 = pd.Timestamp("2024-01-01")
        seconds = rng.integers(0, self.days * 86400, size=n)
        activity = rng.lognormal(0.0, 1.5, size=self.users)  # a few heavy users, many light
        events = pd.DataFrame({
            "user_id": rng.choice(self.users, size=n, p=activity / activity.sum()),
            "ts": t0 + pd.to_timedelta(seconds, unit="s"),
            "event": rng.choice(EVENT_TYPES, size=n, p=EVENT_WEIGHTS),
        })
        events["amount"] = np.where(events["event"] == "purchase",
                                    rng.gamma(2.0, 20.0, size=n).round(2), 0.0)
        self.events = events.sort_values("ts", ignore_index=True)
        self.windows = [str((t0 + pd.Timedelta(days=d)).date())
                        for d in range(0, self.days, self.window)]
        print("%d events of %d users, windows %s" % (len(self.events), self.users,
                                                     self.windows))
        self.next(self.featurize, foreach="windows")

    @step
    def featurize(self):
        """The features of each user active in one window."""
        start = pd.Timestamp(self.input)
        end = start + pd.Timedelta(days=self.window)
        ev = self.events[(self.events["ts"] >= start) & (self.events["ts"] < end)]
        counts = pd.crosstab(ev["user_id"], ev["event"]).reindex(columns=EVENT_TYPES,
                                                                 fill_value=0)
        grouped = ev.groupby("user_id")
        table = pd.DataFrame({
            "events": grouped.size(),
            "views": counts["view"],
            "clicks": counts["click"],
            "carts": counts["add_to_cart"],
            "purchases": counts["purchase"],
            "revenue": grouped["amount"].sum().round(2),
            "active_days": grouped["ts"].agg(lambda s: s.dt.normalize().nunique()),
            "last_seen": grouped["ts"].max(),
        })
        table["conversion"] = (table["purchases"] / table["views"].where(table["views"] > 0)
                               ).fillna(0.0).round(4)
        table.insert(0, "window_start", self.input)
        self.window_start = self.input
        self.window_events = len(ev)
        self.window_features = table.reset_index()
        print("window %s: %d events, %d users" % (self.input, len(ev), len(table)))
        self.next(self.join)

    @step
    def join(self, inputs):
        """All windows in one table."""
        self.features = pd.concat([inp.window_features for inp in inputs],
                                  ignore_index=True)
        self.features = self.features.sort_values(["window_start", "user_id"],
                                                  ignore_index=True)
        self.rows_per_window = {inp.window_start: len(inp.window_features) for inp in inputs}
        self.events_per_window = {inp.window_start: inp.window_events for inp in inputs}
        self.merge_artifacts(inputs, exclude=["window_start", "window_events",
                                              "window_features"])
        self.next(self.validate)

    @step
    def validate(self):
        """Check the table before anything is written."""
        f = self.features
        counts = ["events", "views", "clicks", "carts", "purchases"]
        self.checks = {
            "no nulls": not f.isnull().values.any(),
            "unique (window_start, user_id)": not f.duplicated(["window_start",
                                                                "user_id"]).any(),
            "every window present": sorted(f["window_start"].unique()) == sorted(self.windows),
            "rows add up": len(f) == sum(self.rows_per_window.values()),
            "counts are non-negative": bool((f[counts] >= 0).all().all()),
            "events = sum of event types": bool(
                (f["events"] == f[counts[1:]].sum(axis=1)).all()),
            "every raw event counted once": int(f["events"].sum()) == len(self.events),
            "revenue only with purchases": bool(((f["revenue"] > 0) <=
                                                 (f["purchases"] > 0)).all()),
            "active days within the window": bool(f["active_days"].between(
                1, self.window).all()),
        }
        failed = [name for name, ok in self.checks.items() if not ok]
        if failed:
            raise ValueError("the feature table failed its checks: %s" % ", ".join(failed))
        self.row_count = len(f)
        print("all %d checks passed, %d rows" % (len(self.checks), self.row_count))
        self.next(self.write)

    @step
    def write(self):
        """Write the table and its manifest to the output directory."""
        out = os.path.abspath(self.outdir)
        os.makedirs(out, exist_ok=True)
        self.output_path = os.path.join(out, "user_features.csv")
        tmp = self.output_path + ".tmp"
        self.features.to_csv(tmp, index=False)
        os.replace(tmp, self.output_path)  # readers never see half a table
        manifest = {"flow": current.flow_name, "run_id": current.run_id,
                    "rows": self.row_count, "columns": list(self.features.columns),
                    "windows": self.windows, "file": os.path.basename(self.output_path)}
        with open(os.path.join(out, "manifest.json"), "w") as fh:
            json.dump(manifest, fh, indent=2)
        self.next(self.end)

    @step
    def end(self):
        """Report."""
        print("wrote %d rows (%d windows) to %s" % (self.row_count, len(self.windows),
                                                   self.output_path))


if __name__ == "__main__":
    FeatureStoreFlow()
