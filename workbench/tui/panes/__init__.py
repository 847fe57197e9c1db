"""The five panes, in the order of their number keys."""

PANES = ("data", "train", "evaluate", "predict", "runs")
TITLES = {"data": "1 Data", "train": "2 Train", "evaluate": "3 Evaluate", "predict": "4 Predict", "runs": "5 Runs"}
