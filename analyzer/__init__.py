"""The analyzer: runs and commons downloads as pandas DataFrames (no training code)."""

from analyzer.loading import Tables, load_a4nn_csv, load_commons, load_run

__all__ = ["Tables", "load_a4nn_csv", "load_commons", "load_run"]
