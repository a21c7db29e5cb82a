"""The bilevel search step against math: hypergradients vs numerical ones."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from supernet.models.nb201_net import Nb201Cell
from supernet.search import bilevel


class TinySupernet(nn.Module):
  """One NB201 mixed cell between a conv stem and a classifier: the bilevel
  algebra does not depend on network size, and this compiles in seconds."""

  num_classes: int = 3

  @nn.compact
  def __call__(self, x, weights, train: bool = True):
    x = nn.Conv(3, (3, 3), use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, use_scale=False,
                     use_bias=False)(x)
    x = Nb201Cell(3, affine=False)(x, weights["cell"], train)
    return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


def _tiny_setup(hypergradient, dtype=jnp.float32, grad_clip=0.0,
                fd_epsilon=0.01, mixing="softmax"):
  model = TinySupernet()
  tx, lr = bilevel.weight_optimizer(0.1, 0.01, 0.9, 3e-4, grad_clip, 10)
  atx = bilevel.arch_optimizer(3e-3, 0.5, 0.999, 1e-3)
  key = jax.random.key(0)
  alphas = {"cell": jax.random.normal(key, (6, 5), dtype) * 0.5}
  x = jax.random.normal(jax.random.key(1), (2, 4, 6, 6, 2), dtype)
  y = jnp.array([[0, 1, 2, 1], [2, 2, 0, 1]])
  train = {"image": x[0], "label": y[0], "mask": jnp.ones(4, dtype)}
  val = {"image": x[1], "label": y[1], "mask": jnp.ones(4, dtype)}
  state = bilevel.init_search_state(model, alphas, x[0][:1],
                                    jax.random.key(2), "softmax", tx, atx)
  state = jax.tree.map(
      lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating)
      else v, state)
  # Momentum buffers non-zero, as in the middle of a search.
  state = state.replace(weight_opt_state=jax.tree.map(
      lambda v: (0.01 * jnp.ones_like(v) if jnp.issubdtype(v.dtype, jnp.floating)
                 else v), state.weight_opt_state))
  step = bilevel.make_search_step(model, hypergradient=hypergradient,
                                  mixing=mixing, weight_tx=tx, arch_tx=atx,
                                  weight_lr=lr, total_steps=10,
                                  fd_epsilon=fd_epsilon, jit=False)
  return model, tx, step, state, train, val


def _unrolled_val_loss(step, tx, state, train, val, alphas, k_train=None,
                       k_val=None, tau=1.0):
  """L_val(w'(alpha), alpha) written out independently of the library."""
  g, _ = jax.grad(step.loss_fn, has_aux=True)(
      state.params, alphas, state.batch_stats, train, k_train, tau)
  updates, _ = tx.update(g, state.weight_opt_state, state.params)
  w1 = optax.apply_updates(state.params, updates)
  return step.loss_fn(w1, alphas, state.batch_stats, val, k_val, tau)[0]


def test_exact_hypergradient_matches_float64_numerical_derivative():
  with jax.enable_x64(True):
    _, tx, step, state, train, val = _tiny_setup("exact", jnp.float64)
    g, _, _ = jax.jit(step.hypergrad)(state, train, val, jax.random.key(0),
                                      1.0)
    f = jax.jit(lambda a: _unrolled_val_loss(step, tx, state, train, val, a))
    h = 1e-6
    for e, k in [(0, 3), (2, 1), (4, 4), (5, 2), (3, 0)]:
      d = jnp.zeros((6, 5), jnp.float64).at[e, k].set(h)
      num = (f({"cell": state.alphas["cell"] + d})
             - f({"cell": state.alphas["cell"] - d})) / (2 * h)
      np.testing.assert_allclose(g["cell"][e, k], num, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("mixing,grad_clip", [("softmax", 0.0),
                                              ("softmax", 0.05),
                                              ("gumbel", 0.05)])
def test_exact_hypergradient_equals_reverse_over_reverse(mixing, grad_clip):
  """The forward-over-reverse chain rule gives the number plain
  ``jax.grad`` of the unrolled validation loss gives, also through gradient
  clipping (a non-elementwise update: 0.05 clips these gradients) and the
  straight-through Gumbel weights."""
  with jax.enable_x64(True):
    _, tx, step, state, train, val = _tiny_setup(
        "exact", jnp.float64, grad_clip=grad_clip, mixing=mixing)
    key = jax.random.key(5)
    g, loss, _ = jax.jit(step.hypergrad)(state, train, val, key, 0.7)
    k_train, k_val = jax.random.split(key)
    want_loss, want = jax.jit(jax.value_and_grad(
        lambda a: _unrolled_val_loss(step, tx, state, train, val, a, k_train,
                                     k_val, 0.7)))(state.alphas)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
  np.testing.assert_allclose(g["cell"], want["cell"], rtol=1e-9, atol=1e-12)
  assert np.abs(np.asarray(want["cell"])).max() > 1e-4  # not vacuous


def _hypergrads(dtype, fd_epsilon):
  out = {}
  for mode in ("exact", "second", "first"):
    _, _, step, state, train, val = _tiny_setup(mode, dtype,
                                                fd_epsilon=fd_epsilon)
    g = jax.jit(step.hypergrad)(state, train, val, jax.random.key(0), 1.0)[0]
    out[mode] = np.asarray(g["cell"]).ravel()
  return out


def test_second_order_is_close_to_exact():
  # The finite difference is exact up to O(eps^2) where the loss is smooth
  # along v. The tiny test network is ReLU-kinked at eps = 0.01/||v|| (the
  # DARTS default), so the formula itself is checked at a smaller eps in
  # float64, where it must agree with autodiff through the unrolled step.
  with jax.enable_x64(True):
    g = _hypergrads(jnp.float64, fd_epsilon=1e-5)
  rel = np.linalg.norm(g["exact"] - g["second"]) / np.linalg.norm(g["exact"])
  assert rel < 1e-4, rel
  # The second-order term matters: first order is far from exact.
  assert np.linalg.norm(g["exact"] - g["first"]) > 100 * np.linalg.norm(
      g["exact"] - g["second"])


@pytest.mark.parametrize("mode", ["first", "second", "exact"])
def test_jitted_step_does_not_recompile(mode):
  model, tx, step, state, train, val = _tiny_setup(mode)
  jitted = jax.jit(step)
  key = jax.random.key(3)
  state, m = jitted(state, train, val, key)
  state, m = jitted(state, train, val, key)
  assert jitted._cache_size() == 1
  state, m = jitted(state, train, val, key)
  assert jitted._cache_size() == 1
  assert int(state.step) == 3
  assert np.isfinite(float(m["train_loss"]))


def test_step_moves_weights_and_alphas_apart():
  _, _, step, state, train, val = _tiny_setup("first")
  new, metrics = jax.jit(step)(state, train, val, jax.random.key(0))
  # Alphas and weights both change, and the batch statistics are updated.
  assert not np.allclose(new.alphas["cell"], state.alphas["cell"])
  d = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.abs(a - b).max(),
                                   new.params, state.params))
  assert max(float(x) for x in d) > 0
  assert set(metrics) >= {"train_loss", "val_loss", "train_acc", "val_acc",
                          "lr", "hypergrad_norm"}


def test_arch_warmup_keeps_alphas_fixed():
  model, tx, _, state, train, val = _tiny_setup("first")
  tx, lr = bilevel.weight_optimizer(0.1, 0.01, 0.9, 3e-4, 0.0, 10)
  atx = bilevel.arch_optimizer(3e-3, 0.5, 0.999, 1e-3)
  step = bilevel.make_search_step(model, hypergradient="first",
                                  mixing="softmax", weight_tx=tx, arch_tx=atx,
                                  weight_lr=lr, total_steps=10,
                                  arch_start_step=2)
  s1, _ = step(state, train, val, jax.random.key(0))
  np.testing.assert_array_equal(s1.alphas["cell"], state.alphas["cell"])
  s2, _ = step(s1, train, val, jax.random.key(0))
  s3, _ = step(s2, train, val, jax.random.key(0))
  assert not np.allclose(s3.alphas["cell"], state.alphas["cell"])
