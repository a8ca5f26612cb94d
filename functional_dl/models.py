"""Small reference models and the tasks ``python -m functional_dl train`` runs.

Each model is a :class:`functional_dl.nn.Layer` composed from ``fdl.nn`` layers; each
task bundles a model with its data, loss and metrics:

    task = fdl.models.task("cnn")
    state = fdl.train.create_train_state(key, task.model, optimizer, task.input_shape)
    fdl.train.fit(state, task.model, task.loss_fn, optimizer, task.train, ...)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import data, losses, nn
from ._checks import check_choice, check_int
from .metrics import accuracy, sequence_accuracy

__all__ = [
    "mlp",
    "cnn",
    "resnet",
    "basic_block",
    "lstm_model",
    "transformer_reversal",
    "reversal_data",
    "gpt",
    "char_corpus",
    "CharVocab",
    "lm_windows",
    "sample_text",
    "sequence_accuracy",
    "BOS",
    "Task",
    "task",
    "TASKS",
]

TASKS = ("mlp", "cnn", "transformer-reversal", "resnet", "lstm", "gpt")


def mlp(
    num_classes: int = 10, hidden: tuple[int, ...] = (256, 128), *, dropout: float = 0.1
) -> nn.Layer:
    """A multi-layer perceptron: ``Flatten, [Linear, ReLU, Dropout] * len(hidden), Linear``.

    Args:
        num_classes: number of output logits.
        hidden: widths of the hidden layers.
        dropout: drop rate after each hidden layer.

    Returns:
        A :class:`~functional_dl.nn.Layer` mapping ``[N, ...]`` to logits ``[N, num_classes]``.

    Example:
        >>> params, state = mlp().init(jax.random.key(0), (1, 8, 8, 1))
    """
    layers = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(width), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(num_classes))


def cnn(
    num_classes: int = 10,
    channels: tuple[int, int] = (32, 64),
    *,
    dropout: float = 0.25,
    axis_name: Any = None,
) -> nn.Layer:
    """A small convolutional network for 8x8 (or larger) images, NHWC.

    ``[Conv2d 3x3 (no bias), BatchNorm, ReLU, MaxPool2d 2] * 2, Flatten, Dropout,
    Linear(128), ReLU, Linear(num_classes)``. With ``axis_name=fdl.train.DATA_AXIS``
    BatchNorm reduces its batch statistics over that device axis (bound by
    :func:`fdl.train.make_train_step`), so data-parallel training equals single-device
    training; with the default ``None`` each device normalises with the statistics of its
    own shard (identical on one device), and the model also runs outside a mapped step.

    Args:
        num_classes: number of output logits.
        channels: output channels of the two convolutions.
        dropout: drop rate before the classifier.
        axis_name: mapped axis over which BatchNorm averages its statistics (``None``:
            no cross-device reduction).

    Returns:
        A :class:`~functional_dl.nn.Layer` mapping ``[N, H, W, C]`` to ``[N, num_classes]``.

    Example:
        >>> params, state = cnn().init(jax.random.key(0), (1, 8, 8, 1))
    """
    layers = []
    for width in channels:
        layers += [
            nn.Conv2d(width, 3, padding=1, bias=False),
            nn.BatchNorm(axis_name=axis_name),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(128),
        nn.ReLU(),
        nn.Linear(num_classes),
    )


def basic_block(
    channels: int, *, stride: int = 1, projection: bool = False, axis_name: Any = None
) -> nn.Layer:
    """ResNet's basic block: ``relu(bn(conv3x3(relu(bn(conv3x3_s(x))))) + shortcut(x))``.

    The shortcut is the identity, or with ``projection=True`` (needed when the stride or
    the channels change) ``BatchNorm(Conv2d(channels, 1, stride))``. He et al. (2016).

    Example:
        >>> params, state = basic_block(8, stride=2, projection=True).init(
        ...     jax.random.key(0), (1, 8, 8, 4))
    """
    body = nn.Sequential(
        nn.Conv2d(channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm(axis_name=axis_name),
        nn.ReLU(),
        nn.Conv2d(channels, 3, padding=1, bias=False),
        nn.BatchNorm(axis_name=axis_name),
    )
    shortcut = None
    if projection:
        shortcut = nn.Sequential(
            nn.Conv2d(channels, 1, stride=stride, bias=False), nn.BatchNorm(axis_name=axis_name)
        )
    return nn.Sequential(nn.Residual(body, shortcut=shortcut), nn.ReLU())


def resnet(
    num_classes: int = 10,
    channels: tuple[int, ...] = (16, 32),
    *,
    blocks_per_stage: int = 1,
    axis_name: Any = None,
) -> nn.Layer:
    """A small ResNet for small images (NHWC), with an adaptive-pooling head.

    ``Conv2d 3x3, BatchNorm, ReLU``; then per stage ``blocks_per_stage`` basic blocks
    (the first of every stage but the first with stride 2 and a projection shortcut);
    then ``AdaptiveAvgPool2d(1), Flatten, Linear(num_classes)``.

    Args:
        num_classes: number of output logits.
        channels: width of each stage.
        blocks_per_stage: basic blocks per stage.
        axis_name: mapped axis over which BatchNorm averages its statistics.

    Returns:
        A :class:`~functional_dl.nn.Layer` mapping ``[N, H, W, C]`` to ``[N, num_classes]``.

    Example:
        >>> params, state = resnet().init(jax.random.key(0), (1, 8, 8, 1))
    """
    check_int("blocks_per_stage", blocks_per_stage, minimum=1, fn="resnet")
    layers = [
        nn.Conv2d(channels[0], 3, padding=1, bias=False),
        nn.BatchNorm(axis_name=axis_name),
        nn.ReLU(),
    ]
    for stage, width in enumerate(channels):
        for b in range(blocks_per_stage):
            down = stage > 0 and b == 0
            layers.append(
                basic_block(width, stride=2 if down else 1, projection=down, axis_name=axis_name)
            )
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(num_classes))


def lstm_model(
    num_outputs: int = 10,
    *,
    hidden_size: int = 64,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> nn.Layer:
    """An LSTM sequence model: ``LSTM`` over ``[N, L, I]``, ``Linear`` on the last step.

    ``[N, H, W]`` images (or ``[N, H, W, 1]``) are read row by row as ``H`` steps of
    ``W`` features. The LSTM's final state is not kept in ``state`` (each batch starts
    from zeros), so the model trains with :func:`functional_dl.train.fit` like any other.

    Returns:
        A :class:`~functional_dl.nn.Layer` mapping ``[N, L, I]`` to ``[N, num_outputs]``.

    Example:
        >>> model = lstm_model(3, hidden_size=8)
        >>> params, state = model.init(jax.random.key(0), (2, 5, 4))
        >>> model.apply(params, state, np.ones((2, 5, 4), np.float32))[0].shape
        (2, 3)
    """
    rnn = nn.LSTM(hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout)
    head = nn.Linear(num_outputs)

    def _seq(shape):
        shape = tuple(shape)
        return shape[:3] if len(shape) == 4 else shape

    def init(key, input_shape):
        k1, k2 = jax.random.split(key)
        shape = _seq(input_shape)
        p_rnn, _ = rnn.init(k1, shape)
        width = hidden_size * (2 if bidirectional else 1)
        p_head, _ = head.init(k2, (shape[0], width))
        return {"lstm": p_rnn, "head": p_head}, {}

    def apply(params, state, x, *, key=None, train=False):
        x = x.reshape(_seq(x.shape))
        y, _ = rnn.apply(params["lstm"], {}, x, key=key, train=train)
        logits, _ = head.apply(params["head"], {}, y[:, -1], train=train)
        return logits, state

    return nn.Layer(init, apply, "lstm_model")


def transformer_reversal(
    vocab_size: int = 12,
    *,
    d_model: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
    dim_feedforward: int = 128,
    dropout: float = 0.0,
) -> nn.Layer:
    """An encoder-decoder Transformer sized for the sequence-reversal task.

    ``apply(params, state, (src, tgt_in))`` returns next-token logits ``[N, T, vocab]``
    (post-norm layers, sinusoidal positions, causal decoder; see
    :func:`functional_dl.nn.Transformer`).

    Example:
        >>> params, state = transformer_reversal().init(jax.random.key(0), ((1, 8), (1, 8)))
    """
    return nn.Transformer(
        vocab_size,
        d_model=d_model,
        num_heads=num_heads,
        num_encoder_layers=num_layers,
        num_decoder_layers=num_layers,
        dim_feedforward=dim_feedforward,
        dropout=dropout,
        max_length=64,
    )


def gpt(
    vocab_size: int,
    *,
    block_size: int = 256,
    n_layer: int = 6,
    n_head: int = 6,
    n_embd: int = 384,
    dropout: float = 0.0,
    bias: bool = True,
) -> nn.Layer:
    """GPT-2 as nanoGPT's ``GPT(GPTConfig(...))``: the same names, sizes and init.

    A :func:`~functional_dl.nn.TransformerLM` with pre-norm LayerNorm, GELU MLP of width
    ``4 n_embd``, learned positions (``block_size`` of them), tied input/output
    embeddings and GPT-2's init (``N(0, 0.02)``, residual projections
    ``N(0, 0.02 / sqrt(2 n_layer))``, zero biases). Defaults: nanoGPT's
    ``shakespeare_char`` sizes (dropout 0). A nanoGPT ``state_dict`` loads with
    :func:`functional_dl.interop.from_torch_state_dict`.

    ``apply(params, state, ids [B, T]) -> (logits [B, T, vocab_size], state)``;
    sample with :func:`functional_dl.nn.generate` (KV cache).

    Args:
        vocab_size: number of tokens.
        block_size: context length (the learned positions).
        n_layer, n_head, n_embd: depth, heads, width.
        dropout: on embeddings, attention weights and residual branches.
        bias: biases in the projections and LayerNorms (nanoGPT's ``bias``).

    Example:
        >>> model = gpt(65, block_size=32, n_layer=2, n_head=2, n_embd=32)
        >>> params, _ = model.init(jax.random.key(0), (1, 32))
        >>> sorted(params)
        ['embed', 'layer_0', 'layer_1', 'norm', 'pos']
    """
    return nn.TransformerLM(
        vocab_size,
        n_embd,
        n_head,
        n_layer,
        norm="layer",
        mlp="gelu",
        positional="learned",
        max_len=block_size,
        bias=bias,
        dropout=dropout,
        tie_embeddings=True,
        scaled_residual_init=True,
    )


def char_corpus(max_chars: int | None = None) -> str:
    """English text that ships with Python: the language reference's help topics.

    The topics of ``pydoc_data.topics`` (what ``help('assert')`` prints), sorted by name
    and joined by blank lines: about 465,000 characters of prose and grammar over ~100
    distinct characters, read from the standard library (no download).

    Args:
        max_chars: keep only the first ``max_chars`` characters (None: all).

    Example:
        >>> char_corpus(22)
        'The "assert" statement'
    """
    if max_chars is not None:
        check_int("max_chars", max_chars, minimum=1, fn="char_corpus")
    topics = importlib.import_module("pydoc_data.topics").topics
    text = "\n\n".join(topics[name] for name in sorted(topics))
    return text if max_chars is None else text[:max_chars]


class CharVocab(NamedTuple):
    """Character-level tokens: id ``i`` is ``chars[i]`` (nanoGPT's ``stoi``/``itos``).

    Example:
        >>> vocab = CharVocab.from_text("hello")
        >>> vocab.size, vocab.encode("hole").tolist(), vocab.decode([3, 0])
        (4, [1, 3, 2, 0], 'oe')
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The sorted distinct characters of ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids ``[len(text)]``; a character outside the vocabulary raises."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"CharVocab.encode: characters not in the vocabulary: {unknown}")
        return np.fromiter((index[c] for c in text), np.int32, len(text))

    def decode(self, ids: Any) -> str:
        """The text of a 1-D sequence of ids."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def lm_windows(
    ids: Any, block_size: int, *, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Next-token training pairs from one long token sequence (nanoGPT's ``get_batch``,
    as arrays): ``inputs[i] = ids[s : s + block_size]``, ``targets[i]`` the same window
    shifted by one, for ``s = 0, stride, 2 stride, ...``.

    Args:
        ids: int ``[N]`` token ids.
        block_size: tokens per window.
        stride: distance between window starts (default ``block_size``: disjoint).

    Returns:
        ``(inputs, targets)``, int32 ``[num_windows, block_size]``.

    Example:
        >>> x, y = lm_windows(np.arange(10), 4)
        >>> x.tolist(), y[:, -1].tolist()
        ([[0, 1, 2, 3], [4, 5, 6, 7]], [4, 8])
    """
    ids = np.asarray(ids, np.int32).reshape(-1)
    check_int("block_size", block_size, minimum=1, fn="lm_windows")
    stride = block_size if stride is None else stride
    check_int("stride", stride, minimum=1, fn="lm_windows")
    if len(ids) < block_size + 1:
        raise ValueError(f"lm_windows: {len(ids)} tokens are too few for block_size={block_size}")
    starts = np.arange(0, len(ids) - block_size, stride)
    index = starts[:, None] + np.arange(block_size)[None, :]
    return ids[index], ids[index + 1]


def sample_text(
    model: nn.Layer,
    params: Any,
    vocab: CharVocab,
    prompt: str,
    max_new_tokens: int,
    *,
    key: Any = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    context: int | None = None,
) -> str:
    """``prompt`` continued by ``max_new_tokens`` characters from a character-level LM
    (:func:`functional_dl.nn.generate`; greedy when ``key`` is None; ``context``: the
    model's ``block_size``, to write past it by cropping as nanoGPT).

    Example:
        >>> vocab = CharVocab.from_text("ab ")
        >>> model = gpt(vocab.size, block_size=8, n_layer=1, n_head=1, n_embd=8)
        >>> params, _ = model.init(jax.random.key(0), (1, 8))
        >>> len(sample_text(model, params, vocab, "ab", 20, key=jax.random.key(1), context=8))
        22
    """
    ids = jnp.asarray(vocab.encode(prompt))[None]
    out = nn.generate(
        model,
        params,
        ids,
        max_new_tokens,
        key=key,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        context=context,
    )
    return vocab.decode(out[0])


BOS = 1  # start-of-sequence token of the reversal task (0 is left unused as padding)


def reversal_data(
    key: Any, n_samples: int, *, length: int = 8, vocab_size: int = 12
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Random token sequences and their reversals, for teacher-forced training.

    Tokens are drawn uniformly from ``2 .. vocab_size - 1``; the decoder reads the reversed
    sequence shifted right behind :data:`BOS` and predicts the reversed sequence.

    Args:
        key: a ``jax.random`` key.
        n_samples: number of sequences.
        length: tokens per sequence.
        vocab_size: size of the vocabulary (two ids are reserved: 0 and ``BOS``).

    Returns:
        ``((src, tgt_in), tgt_out)``, int32 NumPy arrays ``[n_samples, length]``.

    Example:
        >>> (src, tgt_in), tgt_out = reversal_data(jax.random.key(0), 4)
        >>> bool((tgt_out == src[:, ::-1]).all())
        True
    """
    check_int("n_samples", n_samples, minimum=1, fn="reversal_data")
    check_int("length", length, minimum=1, fn="reversal_data")
    check_int("vocab_size", vocab_size, minimum=3, fn="reversal_data")
    src = data.host_rng(key).integers(2, vocab_size, (n_samples, length), dtype=np.int32)
    tgt_out = src[:, ::-1].copy()
    tgt_in = np.concatenate([np.full((n_samples, 1), BOS, np.int32), tgt_out[:, :-1]], axis=1)
    return (src, tgt_in), tgt_out


class Task(NamedTuple):
    """A model with its data (NumPy, ``(inputs, targets)`` per split), loss and metrics."""

    model: nn.Layer
    loss_fn: Callable[[Any, Any], Any]
    metrics: dict[str, Callable[[Any, Any], Any]]
    train: tuple[Any, ...]  # (inputs, targets)
    val: tuple[Any, ...]
    test: tuple[Any, ...]
    input_shape: Any  # a shape, or a tuple of shapes for several inputs
    vocab: CharVocab | None = None  # character-level tasks: how ids map to text


def _digits() -> list[tuple[np.ndarray, ...]]:
    """Digits split 70/15/15 with a fixed key, so every run tests on the same images."""
    return data.random_split(jax.random.key(0), data.load_digits(), [0.7, 0.15, 0.15])


def task(name: str, *, seed: int = 0, axis_name: Any = None) -> Task:
    """The model, data, loss and metrics of a named task.

    ``"mlp"``, ``"cnn"``, ``"resnet"`` and ``"lstm"`` (rows as time steps):
    scikit-learn's 8x8 digits (1797 images, split 70/15/15 with
    a fixed key), cross-entropy, accuracy. ``"transformer-reversal"``: an encoder-decoder
    Transformer that learns to reverse random token sequences (data drawn from ``seed``),
    cross-entropy per token, token accuracy. ``"gpt"``: a 2-layer :func:`gpt` predicting
    the next character of :func:`char_corpus` (windows of 64 characters, split 90/5/5 in
    text order), cross-entropy per character, token accuracy; ``Task.vocab`` decodes.

    Args:
        name: one of :data:`TASKS`.
        seed: seed of the generated data (the reversal task only).
        axis_name: passed to the models with batch statistics (:func:`cnn`); give
            ``fdl.train.DATA_AXIS`` to train data-parallel with synchronised BatchNorm.

    Returns:
        :class:`Task`.

    Example:
        >>> task("cnn").train[0].shape
        (1258, 8, 8, 1)
    """
    check_choice("name", name, TASKS, fn="task")
    check_int("seed", seed, minimum=0, fn="task")
    metrics = {"accuracy": accuracy}
    if name in ("mlp", "cnn", "resnet"):
        train, val, test = _digits()
        model = {
            "mlp": mlp,
            "cnn": lambda: cnn(axis_name=axis_name),
            "resnet": lambda: resnet(axis_name=axis_name),
        }[name]()
        return Task(model, losses.cross_entropy, metrics, train, val, test, (1, 8, 8, 1))
    if name == "lstm":  # the digits read row by row: 8 steps of 8 pixels
        train, val, test = _digits()
        return Task(lstm_model(10), losses.cross_entropy, metrics, train, val, test, (1, 8, 8))
    if name == "gpt":
        return _gpt_task()
    key = jax.random.PRNGKey(seed)  # raw key: the data are drawn on the host
    train, val, test = (
        reversal_data(jax.random.fold_in(key, i), n) for i, n in enumerate((8192, 512, 512))
    )
    metrics = {"token_accuracy": accuracy, "sequence_accuracy": sequence_accuracy}
    return Task(
        transformer_reversal(), losses.cross_entropy, metrics, train, val, test, ((1, 8), (1, 8))
    )


GPT_BLOCK = 64  # context of the "gpt" task


def _gpt_task() -> Task:
    """A small GPT on :func:`char_corpus`, split 90/5/5 in text order (disjoint windows)."""
    text = char_corpus()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    cut1, cut2 = int(0.9 * len(ids)), int(0.95 * len(ids))
    train, val, test = (lm_windows(p, GPT_BLOCK) for p in (ids[:cut1], ids[cut1:cut2], ids[cut2:]))
    model = gpt(vocab.size, block_size=GPT_BLOCK, n_layer=2, n_head=4, n_embd=64)
    metrics = {"token_accuracy": accuracy}
    return Task(model, losses.cross_entropy, metrics, train, val, test, (1, GPT_BLOCK), vocab)
