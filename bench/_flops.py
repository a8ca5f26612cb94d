"""Analytic FLOP counts of the benchmarked train steps (one definition, used by
``bench_torch``, ``bench_layers`` and ``bench_attention`` for the achieved-GFLOP/s rows).

Only the matmul and convolution FLOPs are counted (2 per multiply-add); elementwise ops,
normalisation, pooling and the optimizer update are not. Backward costs twice the
forward (the gradients w.r.t. the inputs and the weights of each layer), except the
first layer's input gradient, which a train step does not compute.
"""

from __future__ import annotations


def mlp_flops(batch: int, sizes: list[int]) -> float:
    """Matmul FLOPs of one train step: forward 2*B*in*out per layer, backward twice that,
    less the first layer's input gradient (not computed)."""
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * batch * (3 * sum(macs) - macs[0])


def cnn_flops(batch: int, hw: int, width: int) -> float:
    """Convolution + dense FLOPs of one train step of the CNN (3x3 convs, 'same' padding,
    2x2 pools; the elementwise ops, batch norm and pooling are not counted)."""
    macs = [
        hw * hw * 9 * 1 * width,
        (hw // 2) ** 2 * 9 * width * 2 * width,
        (hw // 4) ** 2 * 2 * width * 10,
    ]
    return 2 * batch * (3 * sum(macs) - macs[0])


def lm_flops(batch: int, length: int, vocab: int, d: int, layers: int, hidden: int) -> float:
    """Matmul FLOPs of one TransformerLM train step: per token and layer the projections
    (qkv, out: 4 d^2; SwiGLU: 3 d hidden) and the causal attention (QK^T and PV over the
    (L+1)/2 visible keys on average: d (L+1)); the head d*vocab; backward twice forward."""
    per_token = layers * (4 * d * d + 3 * d * hidden + d * (length + 1)) + d * vocab
    return 3 * 2 * batch * length * per_token


def lm_hidden(d: int) -> int:
    """The SwiGLU hidden width of ``TransformerLM`` (and of the flax/torch copies):
    ``8 d / 3`` rounded up to a multiple of 8."""
    return -(-8 * d // 3 // 8) * 8
