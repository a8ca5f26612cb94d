"""A character-level GPT: nanoGPT's shakespeare_char, on text that ships with Python.

    python examples/char_gpt.py                        # 2000 steps (CPU: minutes)
    python examples/char_gpt.py --steps 20 --n-layer 1 --n-embd 32 --block-size 32
    python examples/char_gpt.py --load weights.npz     # start from nanoGPT weights

``weights.npz``: ``np.savez("weights.npz", **{k: v.numpy() for k, v in
model.state_dict().items()})`` of a nanoGPT ``GPT`` trained on the same characters.
"""

import argparse

import jax
import numpy as np

import functional_dl as fdl


def main(argv=None):
    p = argparse.ArgumentParser(description="Train a char-level GPT (a nanoGPT port)")
    for name, default in [("steps", 2000), ("batch-size", 64), ("block-size", 128),
                          ("n-layer", 4), ("n-head", 4), ("n-embd", 128)]:  # fmt: skip
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--load", default=None, help="a nanoGPT state dict saved as .npz")
    a = p.parse_args(argv)

    text = fdl.models.char_corpus()  # Python's help topics (pydoc_data), ~465k characters
    vocab = fdl.models.CharVocab.from_text(text)
    data = vocab.encode(text)
    train, val = data[: int(0.9 * len(data))], data[int(0.9 * len(data)) :]
    model = fdl.models.gpt(vocab.size, block_size=a.block_size, n_layer=a.n_layer,
                           n_head=a.n_head, n_embd=a.n_embd)  # fmt: skip
    opt = fdl.optim.adamw(fdl.schedules.cosine_annealing_lr(a.lr, T_max=a.steps))
    state = fdl.train.create_train_state(jax.random.key(0), model, opt, (1, a.block_size))
    if a.load:  # PyTorch names and layouts -> ours
        params, _ = fdl.interop.from_torch_state_dict(model, np.load(a.load), (1, a.block_size))
        state = state.replace(params=params)
    step = fdl.train.make_train_step(model, fdl.losses.cross_entropy, opt)
    rng = np.random.default_rng(0)
    for _ in range(a.steps):  # nanoGPT's get_batch: random windows of the training text
        ix = rng.integers(0, len(train) - a.block_size - 1, a.batch_size)[:, None]
        window = ix + np.arange(a.block_size)
        state, metrics = step(state, (train[window], train[window + 1]))
    val_data = fdl.models.lm_windows(val, a.block_size)
    val_loss = fdl.train.evaluate(state, model, fdl.losses.cross_entropy, val_data)["loss"]
    print(f"step {a.steps}: train loss {float(metrics['loss']):.3f}, val loss {val_loss:.3f}")
    print(fdl.models.sample_text(model, state.params, vocab, "The ", 300, top_k=10,
                                 key=jax.random.key(1), context=a.block_size))  # fmt: skip
    return val_loss


if __name__ == "__main__":
    main()
