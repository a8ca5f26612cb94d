"""models.gpt and its character-level data, the CLI's ``train --model gpt`` and
examples/char_gpt.py (run at small settings)."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import cli, interop, models

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = dict(block_size=16, n_layer=1, n_head=2, n_embd=16)


def test_char_corpus_vocab_and_windows():
    text = models.char_corpus()
    assert len(text) > 100_000 and text.startswith(models.char_corpus(50))
    from pydoc_data.topics import topics  # the stdlib file it reads

    assert topics["assert"] in text
    vocab = models.CharVocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text))) and 50 < vocab.size < 200
    ids = vocab.encode(text[:1000])
    assert ids.dtype == np.int32 and vocab.decode(ids) == text[:1000]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        models.CharVocab.from_text("abc").encode("abd")
    x, y = models.lm_windows(np.arange(100), 8, stride=5)
    starts = np.arange(0, 92, 5)
    np.testing.assert_array_equal(x, starts[:, None] + np.arange(8))
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ValueError, match="too few"):
        models.lm_windows(np.arange(5), 8)


def test_gpt_preset_is_gpt2_and_learns():
    vocab = models.CharVocab.from_text(models.char_corpus(5000))
    model = models.gpt(vocab.size, **SMALL)
    state = fdl.train.create_train_state(jax.random.key(0), model, fdl.optim.adam(3e-3), (1, 16))
    p = state.params
    assert "lm_head" not in p and p["pos"]["table"].shape == (16, 16)
    assert p["layer_0"]["ffn"]["linear1"]["weight"].shape == (16, 64)
    assert "bias" in p["layer_0"]["norm1"] and "bias" in p["norm"]
    x, y = models.lm_windows(vocab.encode(models.char_corpus(5000)), 16)
    step = fdl.train.make_train_step(model, fdl.losses.cross_entropy, fdl.optim.adam(3e-3))
    first = None
    for i in range(30):
        state, m = step(state, (x[i % 8 * 32 : i % 8 * 32 + 32], y[i % 8 * 32 : i % 8 * 32 + 32]))
        first = float(m["loss"]) if first is None else first
    assert float(m["loss"]) < first - 0.5  # from ~log(V) down
    text = models.sample_text(
        model, state.params, vocab, "The ", 40, key=jax.random.key(0), top_p=0.9, context=16
    )
    assert text.startswith("The ") and len(text) == 44 and set(text) <= set(vocab.chars)
    greedy = models.sample_text(model, state.params, vocab, "The ", 10)
    assert greedy == models.sample_text(model, state.params, vocab, "The ", 10)


def test_generate_with_context_crops_like_nanogpt():
    """Beyond max_len, each step sees the last `context` tokens (one compilation)."""
    model = models.gpt(13, **SMALL)
    params, _ = model.init(jax.random.key(0), None)
    prompt = jnp.asarray(np.random.default_rng(0).integers(0, 13, (2, 16)), jnp.int32)
    out = fdl.nn.generate(model, params, prompt, 30, context=16)
    seq, apply = np.asarray(prompt), jax.jit(model.apply)
    for _ in range(30):  # nanoGPT's generate: idx_cond = idx[:, -block_size:]
        logits, _ = apply(params, {}, jnp.asarray(seq[:, -16:]))
        seq = np.concatenate([seq, np.asarray(logits[:, -1].argmax(-1))[:, None]], 1)
    np.testing.assert_array_equal(out, seq)
    short = fdl.nn.generate(model, params, prompt[:, :5], 8, context=16)  # fits: cached
    np.testing.assert_array_equal(
        short, fdl.nn.generate(model, params, prompt[:, :5], 8, use_cache=False)
    )
    with pytest.raises(ValueError, match="exceeds max_len=16"):
        fdl.nn.generate(model, params, prompt, 30)


def test_cli_trains_gpt_and_prints_a_sample(monkeypatch, capsys):
    corpus = models.char_corpus(30_000)
    monkeypatch.setattr(models, "char_corpus", lambda max_chars=None: corpus)
    assert models.task("gpt").vocab is not None
    code = cli.main(["train", "--model", "gpt", "--epochs", "1", "--batch-size", "128",
                     "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "token_accuracy" in out and "sample" in out
    assert len(out.split("sample (temperature 1, top-k 10):\n")[1]) >= 200


def _example():
    spec = importlib.util.spec_from_file_location("char_gpt", ROOT / "examples" / "char_gpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_char_gpt_example_runs_and_loads_pytorch_weights(tmp_path, capsys):
    args = ["--steps", "3", "--batch-size", "8", "--block-size", "16", "--n-layer", "1",
            "--n-head", "2", "--n-embd", "16"]  # fmt: skip
    example = _example()
    val_loss = example.main(args)
    out = capsys.readouterr().out
    assert out.startswith("step 3: train loss") and "The " in out and np.isfinite(val_loss)
    # a nanoGPT state dict (PyTorch names/layouts) saved as .npz loads into the preset
    vocab = models.CharVocab.from_text(models.char_corpus())
    model = models.gpt(vocab.size, **SMALL)
    params, state = model.init(jax.random.key(3), None)
    np.savez(tmp_path / "w.npz", **interop.to_torch_state_dict(model, params, state))
    loaded = example.main(
        [*args, "--steps", "1", "--lr", "1e-12", "--load", str(tmp_path / "w.npz")]
    )
    data = vocab.encode(models.char_corpus())
    x, y = models.lm_windows(data[int(0.9 * len(data)) :], 16)
    ref = fdl.losses.cross_entropy(model.apply(params, {}, jnp.asarray(x))[0], jnp.asarray(y))
    assert abs(loaded - float(ref)) < 1e-4  # the loaded weights, not the fresh init
