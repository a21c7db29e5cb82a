"""Search strategies: pure ``init / ask / tell`` functions over explicit state.

Build one like an optax optimiser, ``regularized_evolution(population_size=20,
sample_size=5, constraint=...)``, or by name from :data:`STRATEGIES` with
:func:`make_strategy`. :func:`run_search` runs it against an evaluator under a
budget of evaluated architectures.
"""

from supernet.strategies.base import (
    Constraint,
    OneShot,
    Result,
    Strategy,
    fold_in_host,
)
from supernet.strategies.constrained_evolution import constrained_evolution
from supernet.strategies.constraints import (
    COSTS,
    all_of,
    latency_constraint,
    make_constraint,
    max_cost,
    nb201_latency_cost,
)
from supernet.strategies.grid import grid_search
from supernet.strategies.random_search import random_search
from supernet.strategies.registry import (
    STRATEGIES,
    StrategyEntry,
    make_strategy,
    strategy_kind,
)
from supernet.strategies.regularized_evolution import regularized_evolution
from supernet.strategies.reinforce import reinforce
from supernet.strategies.runner import (
    SearchRun,
    run_oneshot,
    run_search,
    run_strategy_search,
)
from supernet.strategies.state_io import state_from_json, state_to_json

__all__ = [
    "COSTS", "Constraint", "OneShot", "Result", "STRATEGIES", "SearchRun",
    "Strategy", "StrategyEntry", "all_of", "constrained_evolution",
    "fold_in_host", "grid_search", "latency_constraint", "make_constraint",
    "make_strategy", "max_cost", "nb201_latency_cost", "random_search",
    "regularized_evolution", "reinforce", "run_oneshot", "run_search",
    "run_strategy_search", "state_from_json", "state_to_json",
    "strategy_kind",
]
