"""REINFORCE with an LSTM controller (Williams, 1992; Zoph & Le, 2017).

The controller samples architectures token by token over
``space.cardinalities()``; after each evaluated batch it takes one Adam step
on ``-(reward - baseline) * log p(arch) - entropy_weight * entropy`` with the
reward ``accuracy / 100`` and a moving-average baseline (started at the first
batch's mean reward, so the first samples are not reinforced just for
existing). The controller's parameters and optimiser state are part of the
strategy state, so a search resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from flax import struct

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace, numpy_rng
from supernet.strategies.base import (
    Constraint,
    Result,
    Strategy,
    accuracies_of,
    check_fraction,
    check_positive,
    tokens_of,
)
from supernet.strategies.controller import controller_fns


@struct.dataclass
class ReinforceState:
  """The controller and the baseline.

  Attributes:
    space: the search space (static).
    params: controller parameters.
    opt_state: Adam state of the controller.
    baseline: moving average of the reward.
    num_told: number of architectures told.
    tokens: ``int32[n, num_tokens]``, the architectures told (to avoid
      evaluating one twice).
  """

  space: SearchSpace = struct.field(pytree_node=False)
  params: Any
  opt_state: Any
  baseline: float
  num_told: int
  tokens: np.ndarray


def reinforce(learning_rate: float = 0.05, entropy_weight: float = 1e-3,
              baseline_decay: float = 0.9, batch_size: int = 1,
              hidden_size: int = 32, tanh_constant: float = 2.5,
              temperature: float = 5.0, constraint: Constraint | None = None,
              avoid_duplicates: bool = True, oversample: int = 8,
              max_tries: int = 1000) -> Strategy:
  """REINFORCE over an LSTM controller.

  Args:
    learning_rate: Adam learning rate of the controller.
    entropy_weight: weight of the entropy bonus (keeps exploring).
    baseline_decay: decay of the moving-average reward baseline.
    batch_size: architectures per ask, and per controller update.
    hidden_size: LSTM width.
    tanh_constant: logit squashing ``c * tanh(z / temperature)``; 0 disables.
    temperature: see ``tanh_constant``.
    constraint: hard constraint; violating samples are redrawn from the
      controller (rejection sampling), never evaluated nor learnt from.
    avoid_duplicates: redraw samples that were already evaluated. A
      converging controller keeps proposing its favourite; with a tabular
      or cached evaluator that spends budget on a number already known (by
      a third of the budget in a typical NAS-Bench-201 run). When every try
      is a duplicate, a duplicate is returned.
    oversample: with a constraint or duplicate avoidance, samples drawn per
      try are ``oversample * batch_size``.
    max_tries: samples per candidate before the constraint is declared
      unsatisfiable.

  Returns:
    The strategy.
  """
  if not learning_rate > 0:
    raise UserError(f"learning_rate must be positive, got {learning_rate!r}")
  if not entropy_weight >= 0:
    raise UserError(f"entropy_weight must be >= 0, got {entropy_weight!r}")
  baseline_decay = check_fraction("baseline_decay", baseline_decay)
  batch_size = check_positive("batch_size", batch_size)
  hidden_size = check_positive("hidden_size", hidden_size)
  oversample = check_positive("oversample", oversample)
  max_tries = check_positive("max_tries", max_tries)
  filtered = constraint is not None or avoid_duplicates
  num_samples = batch_size * (oversample if filtered else 1)

  def fns(space: SearchSpace):
    return controller_fns(tuple(space.cardinalities()), hidden_size,
                          float(tanh_constant), float(temperature))

  def init(key, space: SearchSpace) -> ReinforceState:
    params, opt_state = fns(space).init(numpy_rng(key), learning_rate)
    width = len(space.cardinalities())
    return ReinforceState(space=space, params=params, opt_state=opt_state,
                          baseline=0.0, num_told=0,
                          tokens=np.zeros((0, width), np.int32))

  def ask(state: ReinforceState, key) -> list[Arch]:
    space = state.space
    sample = fns(space).sample
    rng = numpy_rng(key)
    seen = ({tuple(t) for t in state.tokens.tolist()} if avoid_duplicates
            else set())
    out: list[Arch] = []
    spares: list[Arch] = []
    for _ in range(max(1, max_tries // num_samples)):
      for row in sample(state.params, rng, num_samples):
        tokens = tuple(int(t) for t in row)
        arch = space.decode(tokens)
        if constraint is not None and not constraint(arch):
          continue
        if tokens in seen:
          spares.append(arch)
          continue
        if avoid_duplicates:
          seen.add(tokens)
        out.append(arch)
        if len(out) == batch_size:
          return out
    if spares:
      return (out + spares)[:batch_size]
    raise UserError(f"the controller found no architecture meeting the "
                    f"constraint in {max_tries} samples; loosen the constraint")

  def tell(state: ReinforceState, archs: Sequence[Arch],
           results: Sequence[Result]) -> ReinforceState:
    rewards = accuracies_of(archs, results) / 100.0
    tokens = tokens_of(state.space, archs)
    update = fns(state.space).update
    params, opt_state, baseline = state.params, state.opt_state, state.baseline
    for start in range(0, len(archs), batch_size):
      chunk = rewards[start:start + batch_size]
      if state.num_told + start == 0:
        baseline = float(chunk.mean())
      # Pad to the compiled batch; padded rows have zero weight.
      padded = np.zeros((batch_size, tokens.shape[1]), np.int32)
      padded[:len(chunk)] = tokens[start:start + batch_size]
      weights = np.zeros(batch_size, np.float32)
      weights[:len(chunk)] = 1.0
      advantages = np.zeros(batch_size, np.float32)
      advantages[:len(chunk)] = chunk - baseline
      params, opt_state = update(params, opt_state, padded, weights,
                                 advantages, np.float32(entropy_weight))
      baseline = (baseline_decay * baseline
                  + (1.0 - baseline_decay) * float(chunk.mean()))
    return state.replace(params=params, opt_state=opt_state,
                         baseline=float(baseline),
                         num_told=state.num_told + len(archs),
                         tokens=np.concatenate([state.tokens, tokens]))

  return Strategy(init, ask, tell)
