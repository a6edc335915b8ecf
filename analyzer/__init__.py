"""The analyzer: runs and commons downloads as pandas tables, queries, metrics, figures.

pandas and matplotlib only: it trains nothing and imports neither torch nor Prefect/Dask
(`analyzer.whatif` uses the prediction engine, numpy and scipy). See docs/analyzer.md.
"""

from analyzer.architectures import (
    alikeness,
    choice_matrix,
    clusters,
    consensus,
    distance_matrix,
    graph_of,
    hamming,
    similar_to,
)
from analyzer.loading import (
    AnalyzerError,
    Tables,
    concat,
    load,
    load_a4nn_csv,
    load_commons,
    load_many,
    load_run,
)
from analyzer.metrics import (
    epochs_saved,
    prediction_error,
    summary,
    termination_distribution,
    wall_time,
)
from analyzer.queries import (
    hypervolume,
    hypervolumes,
    pareto,
    reference_point,
    select,
    top_k,
)

__all__ = [
    "AnalyzerError",
    "Tables",
    "alikeness",
    "choice_matrix",
    "clusters",
    "concat",
    "consensus",
    "distance_matrix",
    "epochs_saved",
    "graph_of",
    "hamming",
    "hypervolume",
    "hypervolumes",
    "load",
    "load_a4nn_csv",
    "load_commons",
    "load_many",
    "load_run",
    "pareto",
    "prediction_error",
    "reference_point",
    "select",
    "similar_to",
    "summary",
    "termination_distribution",
    "top_k",
    "wall_time",
]
