"""Weight-sharing evaluator: accuracy of sub-networks of a trained supernet.

The run directory of ``supernet train`` (an elastic MobileNet) is restored
once; every evaluated architecture gets its own BatchNorm re-calibration on
``bn_batches`` training batches, then its test accuracy, all in the masked
(vmapped) population path. Architectures are evaluated in groups of
``chunk`` (a smaller group padded to a power of two), so the population
function compiles a few times at most, whatever batch sizes a strategy asks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import ml_collections

from supernet.errors import UserError
from supernet.evaluators.base import Result
from supernet.spaces.base import Arch, SearchSpace

TRAIN_HINT = ("run `supernet train --config experiments/configs/ofa_digits.py "
              "--workdir RUN` first and set evaluator.run_dir=RUN")


class LoadedRun(NamedTuple):
  """What the evaluator needs from a trained run (restored once).

  Attributes:
    model: the elastic supernet module.
    space: its search space.
    params: trained weights.
    batch_stats: running statistics (template for re-calibration).
    calib: ``(K, N, H, W, C)`` training images for BN re-calibration.
    evals: stacked test batches ``(images, labels, weights)``.
    in_channels: image channels.
    num_classes: classifier outputs.
  """

  model: Any
  space: Any
  params: Any
  batch_stats: Any
  calib: Any
  evals: tuple[Any, Any, Any]
  in_channels: int
  num_classes: int


def _space_signature(space: SearchSpace) -> tuple[Any, ...]:
  return (space.name, space.cardinalities(), space.token_names(),
          tuple(sorted((k, v) for k, v in vars(space).items()
                       if isinstance(v, (int, float, str, tuple)))))


@functools.lru_cache(maxsize=2)
def load_run(run_dir: str, bn_batches: int, eval_batches: int) -> LoadedRun:
  """Restores the newest checkpoint of an elastic training run.

  Cached: a comparison builds one evaluator per search, and every one of
  them shares the restored weights and the compiled population function.

  Args:
    run_dir: absolute path of the run directory.
    bn_batches: training batches for BN re-calibration (0: the run's
      ``evaluate.bn_batches``).
    eval_batches: test batches to score on (0: the whole test split).

  Returns:
    The restored run.
  """
  import jax
  import jax.numpy as jnp

  from supernet.data import load_dataset
  from supernet.elastic.masks import token_bounds
  from supernet.elastic.population import stack_eval
  from supernet.elastic.step import TrainState, create_train_state, make_optimizer
  from supernet.elastic.train import build_model
  from supernet.rundir import Checkpoints, read_run_config

  if not os.path.isfile(os.path.join(run_dir, "config.json")):
    raise UserError(f"no trained elastic supernet in {run_dir!r}; "
                    f"{TRAIN_HINT}")
  config = read_run_config(run_dir)
  if config.get("space", {}).get("name") != "elastic_mbv":
    raise UserError(f"{run_dir} is not an elastic MobileNet training run; "
                    f"{TRAIN_HINT}")
  ckpt_dir = os.path.join(run_dir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise UserError(f"{run_dir} holds no checkpoint; {TRAIN_HINT}")
  data = load_dataset(config.data)
  info = data.info
  model, space = build_model(config, info.num_classes)
  steps = data.steps_per_epoch()
  tx = make_optimizer(config.optim, int(config.train.epochs) * steps, steps)
  template = create_train_state(model, jax.random.key(0), info.image_shape,
                                tx, token_bounds(space)).to_tree()
  checkpoints = Checkpoints(ckpt_dir)
  restored = checkpoints.restore_latest(template)
  checkpoints.close()
  if restored is None:
    raise UserError(f"{run_dir} holds no complete checkpoint; {TRAIN_HINT}")
  state = TrainState.from_tree(restored[1])
  num = int(bn_batches or config.evaluate.bn_batches)
  calib = jnp.stack([jnp.asarray(b["image"]) for b, _ in zip(
      data.train_batches(0, int(config.seed)), range(num))])
  tests = list(data.eval_batches("test"))
  if eval_batches:
    tests = tests[:int(eval_batches)]
  return LoadedRun(model, space, state.params, state.batch_stats, calib,
                   stack_eval(tests), int(info.image_shape[-1]),
                   int(info.num_classes))


def group_size(n: int, chunk: int) -> int:
  """Population size a group of ``n <= chunk`` archs is padded to.

  The smallest power of two ``>= n``, capped at ``chunk``: a strategy asking
  one architecture at a time costs one sub-network, not ``chunk``, and at
  most ``log2(chunk) + 2`` population shapes are ever compiled.
  """
  return min(chunk, 1 << max(0, int(n) - 1).bit_length())


class SupernetEvaluator:
  """Weight-sharing accuracy (percent) after per-subnet BN re-calibration.

  Each result holds ``accuracy`` (percent on the test split), ``macs`` and
  ``params`` (analytic, :func:`~supernet.elastic.layout.mbv_costs`).
  """

  def __init__(self, run: LoadedRun, chunk: int = 8):
    """Builds the evaluator.

    Args:
      run: a restored run (:func:`load_run`).
      chunk: sub-networks evaluated together (groups are padded to a power of
        two up to ``chunk``, so few shapes ever compile).
    """
    self.run = run
    self.chunk = max(1, int(chunk))
    self.num_queries = 0

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, space: SearchSpace
                  ) -> SupernetEvaluator:
    """Builds the evaluator of an ``evaluator`` config section.

    Args:
      config: ``run_dir`` (a ``supernet train`` run of an elastic MobileNet),
        optional ``bn_batches`` (0: the run's), ``eval_batches`` (0: all),
        ``chunk`` (8).
      space: the search space; must equal the run's space.

    Returns:
      The evaluator.
    """
    run_dir = config.get("run_dir") or ""
    if not run_dir:
      raise UserError(f"evaluator.run_dir is not set; {TRAIN_HINT}")
    run = load_run(os.path.abspath(run_dir), int(config.get("bn_batches", 0)),
                   int(config.get("eval_batches", 0)))
    if _space_signature(run.space) != _space_signature(space):
      raise UserError(f"the search space of the config differs from the one "
                      f"trained in {run_dir}; use the space config the run was "
                      f"trained with ({run_dir}/config.json)")
    return cls(run, int(config.get("chunk", 8)))

  def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
    """Results of ``archs`` (see the class doc); counts one query each."""
    from supernet.elastic.layout import mbv_costs, mbv_layout
    from supernet.elastic.population import evaluate_population
    archs = [self.run.space.validate(a) for a in archs]
    if not archs:
      return []
    accs = []
    for lo in range(0, len(archs), self.chunk):
      group = archs[lo:lo + self.chunk]
      size = group_size(len(group), self.chunk)
      padded = group + [group[-1]] * (size - len(group))
      accs += list(evaluate_population(
          self.run.model, self.run.params, self.run.batch_stats, padded,
          self.run.calib, self.run.evals, size)[:len(group)])
    out = []
    for arch, acc in zip(archs, accs):
      cost = mbv_costs(mbv_layout(self.run.space, arch), self.run.in_channels,
                       self.run.num_classes)
      out.append({"accuracy": 100.0 * float(acc), **cost})
    self.num_queries += len(archs)
    return out
