"""Training derived networks from scratch (``supernet train``).

Public API::

  train_and_evaluate(config, workdir, arch)  # the resumable loop
  TrainSetup(config, arch)                  # dataset, module, steps, mesh
  TrainState, create_train_state, inference_variables, count_params
  make_train_step, make_eval_step, classification_loss
  make_optimizer, make_schedule
  check_train_config, check_model_matches_data, train_defaults, model_defaults

Submodules import JAX; importing this package does not run anything.
"""

from supernet.train.config import (
    check_model_matches_data,
    check_train_config,
    model_defaults,
    train_defaults,
)
from supernet.train.loop import TrainSetup, train_and_evaluate
from supernet.train.optim import make_optimizer, make_schedule
from supernet.train.state import (
    TrainState,
    abstract_train_state,
    count_params,
    create_train_state,
    inference_structure,
    inference_variables,
)
from supernet.train.steps import (
    classification_loss,
    make_eval_step,
    make_train_step,
)

__all__ = [
    "TrainSetup", "TrainState", "abstract_train_state",
    "check_model_matches_data", "check_train_config", "classification_loss",
    "count_params", "create_train_state", "inference_structure",
    "inference_variables", "make_eval_step", "make_optimizer",
    "make_schedule", "make_train_step", "model_defaults", "train_defaults",
    "train_and_evaluate",
]
