"""Helpers of the eval tests (a module of its own: pytest runs with --import-mode=importlib,
where conftest.py is not importable)."""

import numpy as np


def reference_scores(labels, predictions, num_classes, ignore_index):
  """Per-class IoU by boolean masks, one class at a time; NaN where a class is never seen."""
  valid = (labels < num_classes) & (labels != ignore_index)
  ious = []
  for c in range(num_classes):
    truth, guess = (labels == c) & valid, (predictions == c) & valid
    union = np.sum(truth | guess)
    ious.append(np.sum(truth & guess) / union if union else np.nan)
  accuracy = np.sum((labels == predictions) & valid) / np.sum(valid)
  return np.array(ious), np.nanmean(ious), accuracy
