"""conv2d, pooling and batch_norm against independent NumPy / SciPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import correlate

import functional_dl.nn.functional as F
from functional_dl import nn
from functional_dl.nn.functional._norm import batch_norm_backward
from functional_dl.nn.functional._pool import avg_pool2d_backward, max_pool2d_backward
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap, assert_finite

RNG = np.random.default_rng(0)


def np_conv2d(x, w, b, stride, pads, dilation, groups):
    """PyTorch's conv2d on NHWC/HWIO via scipy.signal.correlate, one channel pair at a time."""
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw, cg, o = w.shape
    wd = np.zeros(((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1, cg, o))
    wd[:: dilation[0], :: dilation[1]] = w  # dilated kernel: zeros between taps
    og = o // groups
    out = None
    for n in range(x.shape[0]):
        for oc in range(o):
            grp = oc // og
            acc = sum(
                correlate(x[n, :, :, grp * cg + c], wd[:, :, c, oc], mode="valid")
                for c in range(cg)
            )
            acc = acc[:: stride[0], :: stride[1]]
            if out is None:
                out = np.zeros((x.shape[0], *acc.shape, o))
            out[n, :, :, oc] = acc + (0 if b is None else b[oc])
    return out


CONV_CASES = [  # x shape, w shape, kwargs, explicit pads for the reference
    ((2, 6, 7, 3), (3, 3, 3, 4), {}, ((0, 0), (0, 0))),
    ((1, 7, 6, 4), (3, 2, 2, 6), {"stride": 2, "padding": (1, 2), "groups": 2}, ((1, 1), (2, 2))),
    (
        (1, 9, 8, 2),
        (2, 3, 2, 3),
        {"stride": (3, 2), "dilation": (2, 1), "padding": 1},
        ((1, 1), (1, 1)),
    ),
    ((2, 5, 6, 2), (4, 3, 2, 2), {"padding": "same"}, ((1, 2), (1, 1))),
    ((1, 5, 5, 4), (3, 3, 1, 4), {"padding": "same", "dilation": 2, "groups": 4}, ((2, 2), (2, 2))),
    ((1, 4, 4, 2), (2, 2, 2, 1), {"padding": "valid", "stride": 3}, ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("xs,ws,kw,pads", CONV_CASES, ids=[str(c[2]) for c in CONV_CASES])
def test_conv2d_matches_scipy_correlate(xs, ws, kw, pads):
    x, w, b = RNG.standard_normal(xs), RNG.standard_normal(ws), RNG.standard_normal(ws[-1])
    stride = kw.get("stride", 1)
    stride = stride if isinstance(stride, tuple) else (stride, stride)
    dil = kw.get("dilation", 1)
    dil = dil if isinstance(dil, tuple) else (dil, dil)
    expected = np_conv2d(x, w, b, stride, pads, dil, kw.get("groups", 1))
    got = F.conv2d(
        jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32), **kw
    )
    assert_close(got, expected)


def test_conv2d_bad_input():
    x, w = jnp.ones((1, 5, 5, 4)), jnp.ones((3, 3, 4, 2))
    with pytest.raises(ValueError, match=r"x must have rank 4 .*x.shape=\(5, 5, 4\)"):
        F.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"C=3 channels .*x.shape=\(1, 5, 5, 3\).*w.shape"):
        F.conv2d(jnp.ones((1, 5, 5, 3)), w)
    with pytest.raises(ValueError, match=r"groups must divide .*groups=3"):
        F.conv2d(x, jnp.ones((3, 3, 1, 2)), groups=3)
    with pytest.raises(ValueError, match=r"kernel .*larger than the padded input.*\(2, 2\)"):
        F.conv2d(jnp.ones((1, 2, 2, 4)), w)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding='full'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"stride must be >= 1, got stride=0"):
        F.conv2d(x, w, stride=0)


# ---------------------------------------------------------------- pooling


def np_pool(x, k, s, p, kind, count_include_pad=True):
    """Explicit window loops over a padded copy (-inf for max, 0 for average)."""
    n, h, w, c = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1]), (0, 0)), constant_values=fill)
    valid = np.pad(np.ones((h, w)), ((p[0], p[0]), (p[1], p[1])))
    ho, wo = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    out = np.empty((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1], :]
            if kind == "max":
                out[:, i, j] = win.max(axis=(1, 2))
            else:
                cnt = (
                    k[0] * k[1]
                    if count_include_pad
                    else valid[i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]].sum()
                )
                out[:, i, j] = win.sum(axis=(1, 2)) / cnt
    return out


POOL_CASES = [
    ((2, 2), None, (0, 0)),
    ((3, 3), (2, 2), (1, 1)),
    ((3, 2), (1, 2), (1, 0)),
    ((2, 3), (2, 1), (1, 1)),
]


@pytest.mark.parametrize("k,s,p", POOL_CASES)
def test_pooling_matches_window_loops(k, s, p):
    x = RNG.standard_normal((2, 7, 6, 3))
    xf = jnp.asarray(x, jnp.float32)
    s_ = k if s is None else s
    assert_close(F.max_pool2d(xf, k, stride=s, padding=p), np_pool(x, k, s_, p, "max"))
    for cip in (True, False):
        assert_close(
            F.avg_pool2d(xf, k, stride=s, padding=p, count_include_pad=cip),
            np_pool(x, k, s_, p, "avg", cip),
        )


def test_max_pool_matches_lax_and_routes_ties_to_first():
    x = jnp.asarray(RNG.standard_normal((1, 6, 6, 2)), jnp.float32)
    ref = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    assert_close(F.max_pool2d(x, 2), ref)
    # a window of equal values sends the whole gradient to its first entry (PyTorch)
    dx = max_pool2d_backward(jnp.ones((1, 2, 2, 1)), jnp.ones((1, 1, 1, 1)), 2)
    assert_close(dx[0, :, :, 0], np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_pooling_gradient_under_jit_equals_hand_backward():
    x = jnp.asarray(RNG.permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3), jnp.float32)  # no ties
    kw = {"stride": 2, "padding": 1}
    for pool, hand in ((F.max_pool2d, max_pool2d_backward), (F.avg_pool2d, avg_pool2d_backward)):
        g = jnp.asarray(RNG.standard_normal(pool(x, 3, **kw).shape), jnp.float32)
        auto = jax.jit(jax.grad(lambda x, pool=pool, g=g: jnp.sum(pool(x, 3, **kw) * g)))(x)
        assert_close(auto, jax.jit(lambda x, g, hand=hand: hand(x, g, 3, **kw))(x, g))


def test_pooling_bad_input():
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel.*=\(2, 2\)"):
        F.max_pool2d(jnp.ones((1, 8, 8, 1)), 3, padding=2)
    with pytest.raises(ValueError, match=r"larger than the padded input.*\(3, 3\)"):
        F.avg_pool2d(jnp.ones((1, 3, 3, 1)), 4)
    with pytest.raises(ValueError, match=r"x must have rank 4"):
        F.max_pool2d(jnp.ones((8, 8)), 2)


def np_pool_full(x, k, s, p, d, ceil_mode, kind, cip=True, divisor=None):
    """PyTorch's documented pooling with dilation / ceil_mode / divisor_override, by loops.

    ``out = floor_or_ceil((n + 2p - d (k - 1) - 1) / s) + 1``, a last window starting at
    or past ``n + p`` dropped; the average divides by the window clipped to ``[-p, n + p)``
    (``cip``) or to ``[0, n)``, or by ``divisor``.
    """
    n, h, w, c = x.shape
    sizes = []
    for m, kk, ss, pp, dd in zip((h, w), k, s, p, d, strict=True):
        span = (m + 2 * pp - dd * (kk - 1) - 1) / ss
        o = (int(np.ceil(span)) if ceil_mode else int(np.floor(span))) + 1
        if ceil_mode and (o - 1) * ss >= m + pp:
            o -= 1
        sizes.append(o)
    out = np.empty((n, *sizes, c))
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            rows = [i * s[0] - p[0] + a * d[0] for a in range(k[0])]
            cols = [j * s[1] - p[1] + b * d[1] for b in range(k[1])]
            vals = [x[:, r, q] for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
            if kind == "max":
                out[:, i, j] = np.max(vals, axis=0)  # padding is -inf: never the max
                continue
            total = np.sum(vals, axis=0)  # padding is zero
            if divisor is not None:
                cnt = divisor
            elif cip:
                cnt = sum(-p[0] <= r < h + p[0] for r in rows) * sum(
                    -p[1] <= q < w + p[1] for q in cols
                )
            else:
                cnt = len(vals)
            out[:, i, j] = total / cnt
    return out


# kernel, stride, padding, dilation on (H, W) = (7, 6) and (5, 8); ceil_mode adds a last
# window in several of them (odd sizes), and drops one that would start in the right
# padding in (2, 2, 1): 5 + 2 - 2 = 5, ceil(5 / 2) + 1 = 4 windows, the 4th starts at 6 - 1
# = 5 = n, dropped.
POOL_GRID = [
    ((2, 2), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 2), (2, 2), (1, 1), (1, 1)),
    ((3, 2), (2, 3), (1, 0), (1, 1)),
    ((3, 3), (1, 1), (0, 0), (2, 2)),
    ((3, 2), (2, 2), (1, 1), (2, 3)),
    ((1, 1), (3, 2), (0, 0), (1, 1)),
    ((2, 3), (3, 2), (1, 1), (2, 1)),
]


def _pool_x(shape):
    x = RNG.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3  # no ties
    return x, jnp.asarray(x, jnp.float32)


@pytest.mark.parametrize("shape", [(2, 7, 6, 2), (1, 5, 8, 2)])
@pytest.mark.parametrize("k,s,p,d", POOL_GRID)
def test_pooling_options_match_window_loops(shape, k, s, p, d):
    x, xf = _pool_x(shape)
    for cm in (False, True):
        want = np_pool_full(x, k, s, p, d, cm, "max")
        assert_close(F.max_pool2d(xf, k, stride=s, padding=p, dilation=d, ceil_mode=cm), want)
        if d != (1, 1):
            continue
        for cip, dv in ((True, None), (False, None), (True, 5), (False, 2)):
            got = F.avg_pool2d(
                xf,
                k,
                stride=s,
                padding=p,
                ceil_mode=cm,
                count_include_pad=cip,
                divisor_override=dv,
            )
            assert_close(got, np_pool_full(x, k, s, p, d, cm, "avg", cip, dv))


def test_pooling_ceil_mode_adds_and_drops_windows():
    x = jnp.ones((1, 5, 5, 1))
    # (5 - 2) / 2 = 1.5: ceil adds a third window starting at 4, inside the input
    assert F.max_pool2d(x, 2, stride=2).shape == (1, 2, 2, 1)
    assert F.max_pool2d(x, 2, stride=2, ceil_mode=True).shape == (1, 3, 3, 1)
    # the added window holds 1 of 2 rows inside the padded input: divisor 2 x 2 -> 1 x 1
    y = F.avg_pool2d(jnp.full((1, 5, 5, 1), 4.0), 2, ceil_mode=True)
    assert float(y[0, 2, 2, 0]) == 4.0 and float(y[0, 0, 2, 0]) == 4.0
    # 6 + 2 - 2 = 6, ceil(6 / 4) + 1 = 3, but the third window would start at 8 - 1 = 7
    # >= 6 + 1, in the right padding: dropped (PyTorch)
    assert F.max_pool2d(jnp.ones((1, 6, 6, 1)), 2, stride=4, padding=1, ceil_mode=True).shape == (
        1,
        2,
        2,
        1,
    )
    # count_include_pad counts the left padding but not the part past the right padding
    y = F.avg_pool2d(jnp.ones((1, 4, 4, 1)), 3, stride=2, padding=1, ceil_mode=True)
    assert y.shape == (1, 3, 3, 1)  # (4 + 2 - 3) / 2 = 1.5 -> 3, last start 4 - 1 = 3 < 5
    assert_close(y[0, :, 0, 0], np.array([4 / 9, 6 / 9, 2 / 6]))


@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 2, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": (3, 2), "stride": 2, "padding": 1, "dilation": (2, 3), "ceil_mode": True},
        {"kernel_size": 3, "stride": 1, "dilation": 2},
    ],
)
def test_max_pool_options_gradient_equals_hand_backward_and_fd(kw):
    x, xf = _pool_x((1, 7, 6, 2))
    y = F.max_pool2d(xf, **kw)
    g = jnp.asarray(RNG.standard_normal(y.shape), jnp.float32)
    auto = jax.jit(jax.grad(lambda x: jnp.sum(F.max_pool2d(x, **kw) * g)))(xf)
    assert_close(auto, max_pool2d_backward(xf, g, **kw))
    # central finite differences in float64 NumPy along a random direction (no ties)
    v = RNG.standard_normal(x.shape)

    def f(z):
        return float(np.sum(np_pool_full_kw(z, kw, "max") * np.asarray(g, np.float64)))

    eps = 1e-4
    fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    assert abs(fd - float(jnp.sum(auto * v))) < 1e-3 * (1 + abs(fd))


def np_pool_full_kw(x, kw, kind, cip=True, divisor=None):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    k = pair(kw["kernel_size"])
    s = pair(kw.get("stride") or k)
    p, d = pair(kw.get("padding", 0)), pair(kw.get("dilation", 1))
    return np_pool_full(x, k, s, p, d, kw.get("ceil_mode", False), kind, cip, divisor)


@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 2, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 0), "ceil_mode": True},
        {"kernel_size": 2, "stride": 4, "padding": 1, "ceil_mode": True},
    ],
)
def test_avg_pool_options_gradient_equals_hand_backward_and_fd(kw):
    x, xf = _pool_x((1, 7, 6, 2))
    for cip, dv in ((True, None), (False, None), (True, 3)):
        opts = {**kw, "count_include_pad": cip, "divisor_override": dv}
        y = F.avg_pool2d(xf, **opts)
        g = jnp.asarray(RNG.standard_normal(y.shape), jnp.float32)
        auto = jax.grad(lambda x, o=opts, g=g: jnp.sum(F.avg_pool2d(x, **o) * g))(xf)
        assert_close(auto, avg_pool2d_backward(xf, g, **opts))
        v = RNG.standard_normal(x.shape)
        gn = np.asarray(g, np.float64)

        def f(z, c=cip, d=dv, gn=gn):
            return float(np.sum(np_pool_full_kw(z, kw, "avg", c, d) * gn))

        fd = (f(x + v) - f(x - v)) / 2  # linear: exact
        assert abs(fd - float(jnp.sum(auto * v))) < 1e-3 * (1 + abs(fd))


def test_pooling_options_under_jit_and_layers():
    x = jnp.asarray(RNG.standard_normal((2, 7, 7, 3)), jnp.float32)
    f = jax.jit(lambda x: F.max_pool2d(x, 3, stride=2, dilation=2, ceil_mode=True))
    assert_close(f(x), F.max_pool2d(x, 3, stride=2, dilation=2, ceil_mode=True))
    y, _ = nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True).apply({}, {}, x)
    assert_close(y, F.max_pool2d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True))
    opts = {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}
    y, _ = nn.AvgPool2d(2, **opts, divisor_override=2).apply({}, {}, x)
    assert_close(y, F.avg_pool2d(x, 2, **opts, divisor_override=2))


def test_pooling_options_bad_input():
    x = jnp.ones((1, 8, 8, 1))
    with pytest.raises(ValueError, match=r"dilation must be >= 1, got dilation=0"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match=r"ceil_mode must be one of.*'yes'"):
        F.max_pool2d(x, 2, ceil_mode="yes")
    with pytest.raises(ValueError, match=r"ceil_mode must be one of"):
        F.avg_pool2d(x, 2, ceil_mode=1.5)
    with pytest.raises(ValueError, match=r"divisor_override must be >= 1, got divisor_override=0"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(
        TypeError, match=r"divisor_override must be an int, got divisor_override=2.5"
    ):
        F.avg_pool2d(x, 2, divisor_override=2.5)
    with pytest.raises(ValueError, match=r"kernel \(size \(3, 3\), dilation \(4, 4\)\) is larger"):
        F.max_pool2d(x, 3, dilation=4)
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        F.max_pool2d(jnp.ones((1, 2, 2, 1)), 3, dilation=2, ceil_mode=True)
    with pytest.raises(TypeError, match=r"dilation"):
        F.avg_pool2d(x, 2, dilation=2)


# ---------------------------------------------------------------- batch_norm


def np_batch_norm_train(x, rm, rv, w, b, momentum, eps):
    """Ioffe & Szegedy with PyTorch's running update (unbiased running variance)."""
    x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
    mu, var = x.mean(0), x.var(0)
    n = x.shape[0]
    y = (x - mu) / np.sqrt(var + eps) * w + b
    new_rm = (1 - momentum) * rm + momentum * mu
    return y, new_rm, (1 - momentum) * rv + momentum * var * n / (n - 1)


def test_batch_norm_training_and_eval_match_textbook():
    x = RNG.standard_normal((4, 3, 2, 5)) * 3 + 1
    rm, rv, w, b = RNG.standard_normal(5), 1 + RNG.random(5), RNG.standard_normal(5), RNG.random(5)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    y, nm, nv = F.batch_norm(f32(x), f32(rm), f32(rv), f32(w), f32(b), training=True, momentum=0.2)
    ey, em, ev = np_batch_norm_train(x, rm, rv, w, b, 0.2, 1e-5)
    assert_close(y, ey.reshape(x.shape))
    assert_close((nm, nv), (em, ev))
    y, nm, nv = F.batch_norm(f32(x), f32(rm), f32(rv), f32(w), f32(b), training=False)
    assert_close(y, (x - rm) / np.sqrt(rv + 1e-5) * w + b)
    assert nm is not None and np.array_equal(nm, f32(rm)) and np.array_equal(nv, f32(rv))


def test_batch_norm_accurate_for_large_mean_small_spread():
    x = (1e4 + 1e-2 * RNG.standard_normal((256, 4))).astype(np.float32)
    y, nm, nv = F.batch_norm(jnp.asarray(x), jnp.zeros(4), jnp.ones(4), training=True)
    ey, em, ev = np_batch_norm_train(x, 0.0, 1.0, 1.0, 0.0, 0.1, 1e-5)
    assert_close(y, ey)
    assert_close((nm, nv), (em, ev))


def test_batch_norm_axis_name_equals_full_batch():
    # two shards of a batch under a named vmap: statistics over the whole batch
    x = jnp.asarray(RNG.standard_normal((8, 3, 4)), jnp.float32)
    full = F.batch_norm(x, jnp.zeros(4), jnp.ones(4), training=True)
    shard = jax.vmap(
        lambda xs: F.batch_norm(xs, jnp.zeros(4), jnp.ones(4), training=True, axis_name="d"),
        axis_name="d",
    )
    y, nm, nv = jax.jit(shard)(x.reshape(2, 4, 3, 4))
    assert_close(y.reshape(x.shape), full[0])
    assert_close((nm[0], nv[0]), full[1:])
    g = jnp.asarray(RNG.standard_normal(x.shape), jnp.float32)
    dx_full, _, _ = batch_norm_backward(x, None, None, None, None, g, training=True)
    dx_shard = jax.jit(
        jax.vmap(
            lambda xs, gs: batch_norm_backward(
                xs, None, None, None, None, gs, training=True, axis_name="d"
            )[0],
            axis_name="d",
        )
    )(x.reshape(2, 4, 3, 4), g.reshape(2, 4, 3, 4))
    assert_close(dx_shard.reshape(x.shape), dx_full)


def test_batch_norm_gradients_finite_and_running_stats_have_no_gradient():
    x = jnp.asarray(RNG.standard_normal((6, 3)), jnp.float32)

    def loss(x, stats_only):
        y, nm, nv = F.batch_norm(x, jnp.zeros(3), jnp.ones(3), training=True)
        return jnp.sum(nm) + jnp.sum(nv) + (0.0 if stats_only else jnp.sum(y**3))

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    assert_finite(grad(x, False))
    # the running statistics are buffers: no gradient flows from them into x
    assert np.all(np.asarray(grad(x, True)) == 0)


def test_batch_norm_bad_input():
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\).*\(2,\)"):
        F.batch_norm(x, jnp.zeros(2), jnp.ones(3), training=True)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        F.batch_norm(jnp.ones((1, 3)), jnp.zeros(3), jnp.ones(3), training=True)
    with pytest.raises(ValueError, match=r"x must have rank >= 2"):
        F.batch_norm(jnp.ones(3), jnp.zeros(3), jnp.ones(3), training=True)
    with pytest.raises(ValueError, match="momentum must be in"):
        F.batch_norm(x, jnp.zeros(3), jnp.ones(3), training=True, momentum=1.5)


# ---------------------------------------------------------------- shared properties

X = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
W = RNG.standard_normal((3, 3, 2, 4)).astype(np.float32)
C4 = np.linspace(0.5, 1.5, 4).astype(np.float32)
OPS = {
    "conv2d": lambda x: F.conv2d(x, jnp.asarray(W), jnp.asarray(C4), padding=1, groups=2),
    "max_pool2d": lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2, count_include_pad=False),
    "batch_norm": lambda x: F.batch_norm(
        x, jnp.zeros(4), jnp.ones(4), jnp.asarray(C4), jnp.asarray(C4), training=True
    ),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_eager_jit_vmap(name):
    assert_eager_jit_vmap(OPS[name], jnp.asarray(X))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_dtype_preserved(name, dtype):
    out = OPS[name](jnp.asarray(X, dtype))
    y = out[0] if isinstance(out, tuple) else out
    assert y.dtype == dtype
    assert_finite(y)
    ref = OPS[name](jnp.asarray(jnp.asarray(X, dtype), jnp.float32))  # same rounded input
    assert_close(y, ref[0] if isinstance(ref, tuple) else ref, dtype=dtype)
