"""NaN in, NaN out for the nn.functional ops and the gradient utilities of ``optim``.

(The activations and losses are covered in ``test_live_rules.py``.) Every registered
``nn.functional`` entry gets one NaN element in each differentiable argument in turn;
some output element must be NaN: no op may turn it into a plausible number. (With a
mask, the whole argument is NaN: a masked-out element is never read.)
"""

import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import grads

NN = sorted(
    n
    for n, e in grads.registry().items()
    if n.split("(")[0] in set(fdl.nn.functional.__all__) and e.public is not None
)


def _point(entry):
    points = entry.fd_examples() if entry.fd_examples else []
    points = points or entry.examples()
    return tuple(np.asarray(a) for a in points[0])


def test_the_walk_covers_nn_functional():
    assert len({n.split("(")[0] for n in NN}) >= 20


@pytest.mark.parametrize("name", NN)
def test_nn_functional_nan_in_nan_out(name):
    entry = grads.registry()[name]
    args = _point(entry)
    for i in entry.argnums:
        bad = [np.array(a, np.float32) if a.dtype.kind == "f" else a for a in args]
        bad[i] = bad[i].copy()
        if "mask" in name or "causal" in name:  # a masked element is not read: NaN it all
            bad[i][...] = np.nan
        else:
            bad[i].flat[0] = np.nan
        out = entry.public(*bad)
        leaves = [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]
        assert any(np.isnan(o).any() for o in leaves), f"{name}: NaN in argument {i} lost"


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_global_norm_and_clipping_keep_nan(norm_type):
    g = {"a": jnp.array([1.0, jnp.nan]), "b": jnp.ones(3)}
    assert np.isnan(fdl.optim.global_norm(g, norm_type=norm_type))
    clip = fdl.optim.clip_grad_norm(1.0, norm_type=norm_type)
    updates, _ = clip.update(g, clip.init(g))
    assert np.isnan(np.asarray(updates["a"])).any()
    value = fdl.optim.clip_grad_value(0.5)
    updates, _ = value.update(g, value.init(g))
    assert np.isnan(np.asarray(updates["a"])[1])
