"""Training on CPU: the encoder-decoder learns reversal, the LM a synthetic language."""

import jax
import jax.numpy as jnp
import numpy as np

import functional_dl as fdl
from functional_dl import nn

KEY = jax.random.PRNGKey(0)


def _adam_train(loss, params, batches, lr):
    opt = fdl.optim.adam(lr)

    @jax.jit
    def step(params, opt_state, batch):
        value, grads = jax.value_and_grad(loss)(params, *batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fdl.optim.apply_updates(params, updates), opt_state, value

    opt_state, values = opt.init(params), []
    for batch in batches:
        params, opt_state, value = step(params, opt_state, batch)
        values.append(float(value))
    return params, values


def test_transformer_learns_sequence_reversal():
    vocab, length, bos = 12, 8, 1
    model = nn.Transformer(
        vocab,
        d_model=32,
        num_heads=4,
        num_encoder_layers=1,
        num_decoder_layers=1,
        dim_feedforward=64,
        dropout=0.0,
        max_length=16,
        pad_id=0,
    )
    params, _ = model.init(KEY, None)
    rng = np.random.default_rng(0)

    def batch(n):
        src = rng.integers(2, vocab, (n, length))
        rev = src[:, ::-1]
        return src, np.concatenate([np.full((n, 1), bos), rev[:, :-1]], 1), rev

    def loss(p, src, tgt_in, tgt_out):
        logits, _ = model.apply(p, {}, (src, tgt_in))
        return fdl.losses.cross_entropy(logits, tgt_out)

    params, _ = _adam_train(loss, params, [batch(64) for _ in range(200)], 3e-3)
    src, _, rev = batch(1000)  # held out: fresh random sequences
    out = nn.generate(model, params, jnp.full((1000, 1), bos, jnp.int32), length, src=src)
    exact = np.mean(np.all(np.asarray(out[:, 1:]) == rev, axis=1))
    assert exact >= 0.99, exact


def test_lm_learns_synthetic_language():
    # x_t = (x_{t-1} + x_{t-2}) mod V: uniform unigrams, deterministic given two tokens
    vocab, length = 16, 16
    rng = np.random.default_rng(1)
    data = np.zeros((4096, length), np.int64)
    data[:, :2] = rng.integers(0, vocab, (4096, 2))
    for t in range(2, length):
        data[:, t] = (data[:, t - 1] + data[:, t - 2]) % vocab
    freq = np.bincount(data.ravel(), minlength=vocab) / data.size
    unigram_entropy = -np.sum(freq * np.log(freq))
    model = nn.TransformerLM(vocab, d_model=32, num_heads=4, num_layers=2)
    params, _ = model.init(KEY, None)

    def loss(p, x):
        logits, _ = model.apply(p, {}, x[:, :-1])
        return fdl.losses.cross_entropy(logits, x[:, 1:])

    batches = [(data[rng.integers(0, 4096, 64)],) for _ in range(300)]
    _, values = _adam_train(loss, params, batches, 3e-3)
    assert np.mean(values[-20:]) < 0.35 * unigram_entropy, (values[-20:], unigram_entropy)
