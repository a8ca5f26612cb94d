"""nn.generate: the cache protocol, the fixed-shape fallback for any causal model, and
greedy / temperature / top-k / top-p sampling against a NumPy reference of the filter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from functional_dl import nn
from tests.helpers import TraceCounter

V = 11
TABLE = np.random.default_rng(0).standard_normal((V, V)).astype(np.float32) * 2.0


def bigram(counter=None):
    """A user's causal model without a cache: logits at ``t`` = ``table[x_t] * scale``.

    ``state["scale"]`` shows that generate passes the model's state through."""

    def apply(params, state, x, *, key=None, train=False):
        return params["table"][x] * state["scale"], state

    fn = apply if counter is None else counter(apply)
    return nn.Layer(lambda k, s: ({"table": jnp.asarray(TABLE)}, {}), fn, "bigram")


PARAMS = {"table": jnp.asarray(TABLE)}
STATE = {"scale": jnp.float32(1.0)}


def np_filter(logits, temperature=1.0, top_k=None, top_p=None):
    """The documented filter written out: temperature, then top-k, then the nucleus."""
    z = np.asarray(logits, np.float32) / np.float32(temperature)
    out = z.copy()
    for row in out:
        if top_k is not None:
            kth = np.sort(row)[::-1][top_k - 1]
            row[row < kth] = -np.inf
        if top_p is not None:
            order = np.argsort(-row, kind="stable")
            finite = row[order]
            p = np.exp(finite - finite.max())
            p = p / p.sum()
            keep, mass = 0, 0.0
            while keep < len(p) and mass < top_p:  # fewest largest with mass >= top_p
                mass += p[keep]
                keep += 1
            row[row < finite[keep - 1]] = -np.inf
    return out


def np_generate(prompt, n, key, **filt):
    """Token-by-token reference: the same keys, the NumPy-filtered logits."""
    seq = np.asarray(prompt)
    keys = jax.random.split(key, n) if key is not None else [None] * n
    for k in keys:
        logits = TABLE[seq[:, -1]]
        if k is None:
            tok = logits.argmax(-1)
        else:
            tok = np.asarray(jax.random.categorical(k, jnp.asarray(np_filter(logits, **filt))))
        seq = np.concatenate([seq, tok[:, None].astype(seq.dtype)], 1)
    return seq


PROMPT = np.array([[1, 2], [5, 0], [9, 9]], np.int32)


@pytest.mark.parametrize(
    "filt",
    [
        {},
        {"temperature": 0.7},
        {"top_k": 3},
        {"top_p": 0.6},
        {"temperature": 1.5, "top_k": 5, "top_p": 0.8},
    ],
)
def test_sampling_matches_numpy_filter(filt):
    key = jax.random.PRNGKey(3)
    out = nn.generate(bigram(), PARAMS, PROMPT, 12, key=key, state=STATE, **filt)
    np.testing.assert_array_equal(out, np_generate(PROMPT, 12, key, **filt))


def test_filter_equals_numpy_reference():
    """The filter itself on 200 rows, for a grid of settings (ties included)."""
    from functional_dl.nn._generate import _filter

    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((200, V)) * 3).astype(np.float32)
    logits[:20, :3] = logits[:20, :1]  # ties at the top
    for temperature, top_k, top_p in [
        (1.0, None, 0.3),
        (1.0, None, 0.9),
        (0.5, None, 0.75),
        (2.0, 4, 0.5),
        (1.0, 1, None),
        (1.0, 6, None),
        (1.0, None, 1.0),
    ]:
        ours = _filter(jnp.asarray(logits), temperature, top_k, top_p)
        ref = np_filter(logits, temperature, top_k, top_p)
        np.testing.assert_array_equal(np.asarray(ours), ref, err_msg=f"{top_k}, {top_p}")


def test_greedy_and_nucleus_support():
    out = nn.generate(bigram(), PARAMS, PROMPT, 6, state=STATE)
    np.testing.assert_array_equal(out, np_generate(PROMPT, 6, None))
    # every draw of a 1-token step lies in the nucleus of its row
    allowed = np.isfinite(np_filter(TABLE, top_p=0.5))
    assert 0 < allowed.sum() < TABLE.size  # the filter removes something here
    prompt = np.arange(V, dtype=np.int32)[:, None]
    for seed in range(5):
        out = nn.generate(
            bigram(), PARAMS, prompt, 1, key=jax.random.PRNGKey(seed), top_p=0.5, state=STATE
        )
        assert allowed[np.arange(V), np.asarray(out[:, 1])].all()


def test_fallback_compiles_once_over_32_tokens():
    counter = TraceCounter
    made = []

    def wrap(fn):
        made.append(counter(fn))
        return made[-1]

    model = bigram(wrap)
    key = jax.random.PRNGKey(0)
    out = nn.generate(model, PARAMS, PROMPT, 32, key=key, top_k=4, state=STATE)
    assert out.shape == (3, 34)
    np.testing.assert_array_equal(out, np_generate(PROMPT, 32, key, top_k=4))
    nn.generate(model, PARAMS, PROMPT, 32, key=jax.random.PRNGKey(1), top_k=4, state=STATE)
    assert made[0].count == 1  # one trace of the model for all 64 tokens of both calls


@pytest.fixture(scope="module")
def lm():
    model = nn.TransformerLM(17, d_model=16, num_heads=2, num_layers=2, num_kv_heads=1)
    return model, model.init(jax.random.PRNGKey(1), None)[0]


@pytest.mark.parametrize("filt", [{}, {"temperature": 0.8, "top_k": 6, "top_p": 0.9}])
def test_cache_and_fallback_agree(lm, filt):
    model, params = lm
    prompt = jax.random.randint(jax.random.PRNGKey(2), (2, 3), 0, 17).astype(jnp.int32)
    key = jax.random.PRNGKey(5) if filt else None
    cached = nn.generate(model, params, prompt, 9, key=key, **filt)
    plain = nn.generate(model, params, prompt, 9, key=key, use_cache=False, **filt)
    np.testing.assert_array_equal(cached, plain)
    assert nn.generate.__module__.endswith("_generate")


def test_user_model_with_the_cache_protocol():
    """A user's model implementing the protocol: its cache counts the positions seen."""

    def apply(params, state, x, *, key=None, train=False, cache_length=None):
        # logits favour token (position + 1) % V: position read from the cache when decoding
        start = state["index"] if "index" in state else 0
        pos = start + jnp.arange(x.shape[1])
        logits = jnp.broadcast_to(jax.nn.one_hot((pos + 1) % V, V), x.shape + (V,))
        if "index" in state or cache_length is not None:
            state = {"index": start + x.shape[1]}
        return logits, state

    model = nn.Layer(lambda k, s: ({}, {}), apply, "counter")
    out = nn.generate(model, {}, jnp.zeros((2, 3), jnp.int32), 5)
    np.testing.assert_array_equal(out[0], [0, 0, 0, 3, 4, 5, 6, 7])
    plain = nn.generate(model, {}, jnp.zeros((2, 3), jnp.int32), 5, use_cache=False)
    np.testing.assert_array_equal(out, plain)


def test_use_cache_forces_the_protocol_through_a_wrapper(lm):
    model, params = lm
    wrapper = nn.Layer(model.init, lambda p, s, x, **kw: model.apply(p, s, x, **kw), "wrap")
    prompt = jnp.ones((2, 3), jnp.int32)
    assert not nn._generate.supports_cache(wrapper)
    cached = nn.generate(wrapper, params, prompt, 5, use_cache=True)
    np.testing.assert_array_equal(cached, nn.generate(wrapper, params, prompt, 5))


def test_generate_bad_input(lm):
    model, params = lm
    prompt = jnp.zeros((1, 2), jnp.int32)
    for top_p in (0.0, 1.5):
        with pytest.raises(ValueError, match=f"top_p={top_p}"):
            nn.generate(model, params, prompt, 2, key=jax.random.PRNGKey(0), top_p=top_p)
    with pytest.raises(ValueError, match="use_cache=True"):
        nn.generate(bigram(), PARAMS, prompt, 2, use_cache=True, state=STATE)
    with pytest.raises(TypeError, match="model must be a Layer"):
        nn.generate(model.apply, params, prompt, 2)
    with pytest.raises(ValueError, match="top_k"):
        nn.generate(model, params, prompt, 2, key=jax.random.PRNGKey(0), top_k=0)
