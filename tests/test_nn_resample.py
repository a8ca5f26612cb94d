"""conv1d, conv_transpose2d, adaptive pooling, interpolate, instance_norm and pixel_shuffle
against NumPy/SciPy references written here, with their hand-derived gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import correlate

import functional_dl as fdl
import functional_dl.nn.functional as F
from functional_dl.nn.functional._conv_transpose import conv_transpose2d_backward
from tests.helpers import FLOAT_DTYPES, assert_close, assert_eager_jit_vmap, assert_finite

RNG = np.random.default_rng(0)
f32 = jnp.float32


def _a(*shape):
    return RNG.standard_normal(shape)


# ------------------------------------------------------------------------ conv1d
def np_conv1d(x, w, b, stride, pads, dilation, groups):
    """PyTorch's conv1d on NLC / [k, C/g, O] via scipy.signal.correlate per channel pair."""
    x = np.pad(x, ((0, 0), pads, (0, 0)))
    k, cg, o = w.shape
    wd = np.zeros(((k - 1) * dilation + 1, cg, o))
    wd[::dilation] = w
    og = o // groups
    out = []
    for n in range(x.shape[0]):
        cols = []
        for oc in range(o):
            grp = oc // og
            acc = sum(
                correlate(x[n, :, grp * cg + c], wd[:, c, oc], mode="valid") for c in range(cg)
            )
            cols.append(acc[::stride] + b[oc])
        out.append(np.stack(cols, -1))
    return np.stack(out)


CONV1D = [
    ((2, 9, 3), (3, 3, 4), {}, (0, 0)),
    ((1, 11, 4), (3, 2, 6), {"stride": 2, "padding": 2, "groups": 2}, (2, 2)),
    ((2, 12, 2), (2, 2, 3), {"stride": 3, "dilation": 2, "padding": 1}, (1, 1)),
    ((1, 7, 2), (4, 2, 2), {"padding": "same"}, (1, 2)),
]


@pytest.mark.parametrize("xs,ws,kw,pads", CONV1D, ids=[str(c[2]) for c in CONV1D])
def test_conv1d_matches_scipy(xs, ws, kw, pads):
    x, w, b = _a(*xs), _a(*ws), _a(ws[-1])
    want = np_conv1d(x, w, b, kw.get("stride", 1), pads, kw.get("dilation", 1), kw.get("groups", 1))
    got = F.conv1d(jnp.asarray(x, f32), jnp.asarray(w, f32), jnp.asarray(b, f32), **kw)
    assert_close(got, want)


def test_conv1d_bad_arguments():
    x, w = jnp.ones((1, 5, 4)), jnp.ones((3, 4, 2))
    with pytest.raises(ValueError, match=r"x must have rank 3 .*x.shape=\(5, 4\)"):
        F.conv1d(x[0], w)
    with pytest.raises(ValueError, match=r"kernel .*larger than the padded input"):
        F.conv1d(jnp.ones((1, 2, 4)), w)
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1"):
        F.conv1d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match=r"groups must divide .*groups=3"):
        F.conv1d(x, jnp.ones((3, 1, 2)), groups=3)
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        F.conv1d(x, w, jnp.ones(3))


# ------------------------------------------------------------- conv_transpose2d
def np_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """PyTorch's definition written as a scatter: every input pixel adds
    ``x[n, i, j, c] * w[a, b, c, :]`` at ``(i s + a d - p, j s + b d - p)``."""
    n, h, wd, c = x.shape
    kh, kw, _, og = w.shape
    ho = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    wo = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    y = np.zeros((n, ho, wo, og * groups)) + b
    cg = c // groups
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for bb in range(kw):
                    oi = i * stride[0] + a * dilation[0] - padding[0]
                    oj = j * stride[1] + bb * dilation[1] - padding[1]
                    if 0 <= oi < ho and 0 <= oj < wo:
                        for grp in range(groups):
                            xs = x[:, i, j, grp * cg : (grp + 1) * cg]
                            y[:, oi, oj, grp * og : (grp + 1) * og] += (
                                xs @ w[a, bb, grp * cg : (grp + 1) * cg]
                            )
    return y


CT = [
    ((2, 4, 3, 3), (3, 3, 3, 2), {}),
    ((1, 3, 4, 4), (3, 2, 4, 3), {"stride": 2, "padding": (1, 0), "groups": 2}),
    ((1, 3, 3, 2), (2, 3, 2, 2), {"stride": (3, 2), "output_padding": (2, 1), "dilation": 2}),
    ((1, 4, 4, 2), (4, 4, 2, 1), {"stride": 2, "padding": 1}),
    ((1, 5, 5, 2), (3, 3, 2, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("xs,ws,kw", CT, ids=[str(c[2]) for c in CT])
def test_conv_transpose2d_matches_scatter_and_scipy_gradient(xs, ws, kw):
    x, w = _a(*xs), _a(*ws)
    groups = kw.get("groups", 1)
    b = _a(ws[-1] * groups)
    geo = [
        _pair(kw.get(k, d))
        for k, d in (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1))
    ]
    want = np_conv_transpose2d(x, w, b, *geo, groups)
    args = [jnp.asarray(v, f32) for v in (x, w, b)]
    got = F.conv_transpose2d(*args, **kw)
    assert_close(got, want, rtol=1e-5, atol=1e-5)
    # its backward is the forward convolution: dx = conv2d(g, w transposed)
    g = jnp.asarray(_a(*got.shape), f32)
    dx, dw, db = jax.vjp(lambda *a: F.conv_transpose2d(*a, **kw), *args)[1](g)
    wc = jnp.transpose(args[1], (0, 1, 3, 2))
    conv = F.conv2d(g, wc, stride=geo[0], padding=geo[1], dilation=geo[3], groups=groups)
    assert_close(dx, conv, rtol=1e-5, atol=1e-5)
    assert_close(db, np.sum(np.asarray(g), axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    hand = conv_transpose2d_backward(*args, g, **kw)
    assert_close(hand, (dx, dw, db), rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_bad_arguments():
    x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match=r"output_padding must be smaller .*output_padding=2"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"padding=5 leaves no output"):
        F.conv_transpose2d(x, w, padding=5)
    with pytest.raises(ValueError, match=r"x has C=3 channels"):
        F.conv_transpose2d(jnp.ones((1, 4, 4, 3)), w)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        F.conv_transpose2d(x, jnp.ones((3, 3, 2, 2)), jnp.ones(3), groups=2)


# ------------------------------------------------------------- adaptive pooling
def np_adaptive(x, out, reduce):
    """PyTorch's windows: start floor(i n / m), end ceil((i + 1) n / m), explicit loops."""
    n, h, w, c = x.shape
    y = np.zeros((n, *out, c))
    for i in range(out[0]):
        h0, h1 = (i * h) // out[0], math.ceil((i + 1) * h / out[0])
        for j in range(out[1]):
            w0, w1 = (j * w) // out[1], math.ceil((j + 1) * w / out[1])
            y[:, i, j] = reduce(x[:, h0:h1, w0:w1].reshape(n, -1, c), axis=1)
    return y


@pytest.mark.parametrize("out", [1, 3, (2, 4), (7, 5), (5, 3)])
def test_adaptive_pools_match_loops(out):
    x = _a(2, 7, 5, 3)
    pair = out if isinstance(out, tuple) else (out, out)
    xj = jnp.asarray(x, f32)
    assert_close(F.adaptive_avg_pool2d(xj, out), np_adaptive(x, pair, np.mean))
    assert_close(F.adaptive_max_pool2d(xj, out), np_adaptive(x, pair, np.max))


@pytest.mark.parametrize("out", [3, (2, 4), (7, 5)])
def test_adaptive_avg_pool_keeps_a_nan_or_inf_pixel_in_its_windows(out):
    # a dense product with the averaging matrices turned every output into NaN
    x = _a(1, 7, 5, 2)
    x[0, 0, 0, 0], x[0, 6, 4, 1], x[0, 6, 0, 1] = np.nan, np.inf, -np.inf
    pair = out if isinstance(out, tuple) else (out, out)
    with np.errstate(invalid="ignore"):
        want = np_adaptive(x, pair, np.mean)
    got = F.adaptive_avg_pool2d(jnp.asarray(x), out)
    assert np.isfinite(want).sum() > 0
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_adaptive_max_pool_gradient_goes_to_first_maximum():
    x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 2, 0].set(1.0)  # ties elsewhere (zeros)
    g = jax.grad(lambda x: F.adaptive_max_pool2d(x, 2).sum())(x)
    want = np.zeros((4, 4))
    want[0, 0] = want[2, 0] = want[2, 2] = want[1, 2] = 1.0  # first max of each window
    assert_close(g[0, :, :, 0], want)
    x = jnp.full((1, 2, 2, 1), jnp.nan)
    assert bool(jnp.isnan(F.adaptive_max_pool2d(x, 1)).all())


def test_adaptive_bad_arguments():
    with pytest.raises(ValueError, match=r"output_size must hold positive ints.*output_size=0"):
        F.adaptive_avg_pool2d(jnp.ones((1, 4, 4, 1)), 0)
    with pytest.raises(ValueError, match=r"x must have rank 4"):
        F.adaptive_max_pool2d(jnp.ones((4, 4, 1)), 2)


# ------------------------------------------------------------------ interpolate
def _src_scale(n_in, n_out, align, sf):
    if align:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / sf if sf else n_in / n_out


def _cubic(t, a=-0.75):
    t = abs(t)
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return 0.0


def np_interpolate(x, out, mode, align, sf):
    """PyTorch's interpolate pixel by pixel (explicit loops over the output)."""
    n, h, w, c = x.shape
    y = np.zeros((n, *out, c))
    sh = _src_scale(h, out[0], align, sf[0])
    sw = _src_scale(w, out[1], align, sf[1])
    for i in range(out[0]):
        for j in range(out[1]):
            if mode == "nearest":
                y[:, i, j] = x[:, min(int(i * sh), h - 1), min(int(j * sw), w - 1)]
                continue
            si = i * sh if align else (i + 0.5) * sh - 0.5
            sj = j * sw if align else (j + 0.5) * sw - 0.5
            if mode == "bilinear":
                si, sj = max(si, 0.0), max(sj, 0.0)
                i0, j0 = min(int(si), h - 1), min(int(sj), w - 1)
                ti, tj = si - i0, sj - j0
                i1, j1 = min(i0 + 1, h - 1), min(j0 + 1, w - 1)
                y[:, i, j] = (1 - ti) * ((1 - tj) * x[:, i0, j0] + tj * x[:, i0, j1]) + ti * (
                    (1 - tj) * x[:, i1, j0] + tj * x[:, i1, j1]
                )
            else:
                i0, j0 = math.floor(si), math.floor(sj)
                acc = 0.0
                for a in range(-1, 3):
                    for bb in range(-1, 3):
                        wt = _cubic(si - (i0 + a)) * _cubic(sj - (j0 + bb))
                        acc = (
                            acc + wt * x[:, min(max(i0 + a, 0), h - 1), min(max(j0 + bb, 0), w - 1)]
                        )
                y[:, i, j] = acc
    return y


INTERP = [
    ({"size": (7, 3), "mode": "nearest"}, (7, 3), (None, None)),
    ({"scale_factor": 2.0, "mode": "nearest"}, (10, 8), (2.0, 2.0)),
    ({"scale_factor": 2.0, "mode": "bilinear"}, (10, 8), (2.0, 2.0)),
    ({"size": (3, 6), "mode": "bilinear"}, (3, 6), (None, None)),
    ({"size": (3, 6), "mode": "bilinear", "align_corners": True}, (3, 6), (None, None)),
    ({"scale_factor": (1.5, 0.75), "mode": "bicubic"}, (7, 3), (1.5, 0.75)),
    ({"size": (9, 7), "mode": "bicubic", "align_corners": True}, (9, 7), (None, None)),
    ({"scale_factor": 1.7, "mode": "bilinear"}, (8, 6), (1.7, 1.7)),
]


@pytest.mark.parametrize("kw,out,sf", INTERP, ids=[str(c[0]) for c in INTERP])
def test_interpolate_matches_loops(kw, out, sf):
    x = _a(2, 5, 4, 2)
    want = np_interpolate(x, out, kw["mode"], bool(kw.get("align_corners")), sf)
    assert_close(F.interpolate(jnp.asarray(x, f32), **kw), want, rtol=1e-5, atol=1e-5)


def test_interpolate_bilinear_equals_jax_image_resize_when_upsampling():
    x = jnp.asarray(_a(2, 6, 5, 3), f32)
    ours = F.interpolate(x, (12, 15), mode="bilinear")
    ref = jax.image.resize(x, (2, 12, 15, 3), "linear", antialias=False)
    assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_interpolate_copies_an_unchanged_axis_and_halves_a_doubled_one_as_pytorch():
    # scale_factor (1.1, 2.2) on 5 x 2 gives 5 x 4: PyTorch's nearest and bilinear kernels
    # copy the unchanged axis (not src = (i + 0.5) / 1.1 - 0.5) and nearest reads j // 2
    # on the doubled one (not floor(j / 2.2)); bicubic keeps the coordinate mapping.
    x = _a(2, 5, 2, 3)
    xs = jnp.asarray(x, f32)
    sf = (1.1, 2.2)
    nearest = np.asarray(xs)[:, :, [0, 0, 1, 1]]
    assert_close(F.interpolate(xs, scale_factor=sf, mode="nearest"), nearest, rtol=0, atol=0)
    bilinear = np_interpolate(x, (5, 4), "bilinear", False, (1.0, 2.2))
    got = F.interpolate(xs, scale_factor=sf, mode="bilinear")
    assert_close(got, bilinear, rtol=1e-5, atol=1e-5)
    bicubic = np_interpolate(x, (5, 4), "bicubic", False, sf)
    got = F.interpolate(xs, scale_factor=sf, mode="bicubic")
    assert_close(got, bicubic, rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda v: jnp.sum(F.interpolate(v, scale_factor=sf, mode="bilinear") ** 2))
    assert_close(g(xs), 2 * np.einsum("nhjc,jw->nhwc", bilinear, _bilinear_w(2, 4, 2.2)), atol=1e-5)


@pytest.mark.parametrize("kw", INTERP[:7], ids=[str(c[0]) for c in INTERP[:7]])
def test_interpolate_keeps_a_nan_or_inf_pixel_local(kw):
    # Only the outputs that read a non-finite pixel become non-finite (a dense product
    # with the interpolation matrices spread 0 * nan to the whole image).
    kw, out, sf = kw
    x = _a(1, 5, 4, 2)
    x[0, 0, 0, 0], x[0, 4, 3, 1] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        want = np_interpolate(x, out, kw["mode"], bool(kw.get("align_corners")), sf)
    got = F.interpolate(jnp.asarray(x), **kw)
    assert np.isfinite(want).sum() > 0
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close(got, want, rtol=1e-6, atol=1e-6)


def _bilinear_w(n_in, n_out, sf):
    """``[n_out, n_in]`` half-pixel bilinear weights of one axis (loops)."""
    a = np.zeros((n_out, n_in))
    for j in range(n_out):
        s = max((j + 0.5) / sf - 0.5, 0.0)
        j0 = min(int(s), n_in - 1)
        a[j, j0] += 1 - (s - j0)
        a[j, min(j0 + 1, n_in - 1)] += s - j0
    return a


def test_interpolate_bad_arguments():
    x = jnp.ones((1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"mode must be one of .*mode='area'"):
        F.interpolate(x, 2, mode="area")
    with pytest.raises(ValueError, match=r"align_corners only applies .*align_corners=True"):
        F.interpolate(x, 2, align_corners=True)
    with pytest.raises(ValueError, match=r"size must be a positive int .*size=0"):
        F.interpolate(x, 0)


# ------------------------------------------------------- instance norm, pixel shuffle
def test_instance_norm_matches_numpy():
    x, w, b = _a(2, 5, 4, 3), _a(3), _a(3)
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-5) * w + b
    got = F.instance_norm(*(jnp.asarray(v, f32) for v in (x, w, b)))
    assert_close(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.instance_norm(jnp.asarray(x, f32), jnp.ones(4))
    big = jnp.asarray(1e4 + 1e-2 * _a(1, 6, 3), f32)  # shifted statistics: still accurate
    b64 = np.asarray(big, np.float64)
    want = (b64 - b64.mean(1, keepdims=True)) / np.sqrt(b64.var(1, keepdims=True) + 1e-5)
    assert_close(F.instance_norm(big), want, rtol=1e-3, atol=1e-3)


def test_pixel_shuffle_matches_torch_channel_order():
    x = _a(2, 3, 2, 12)
    r, c = 2, 3
    want = np.zeros((2, 6, 4, c))
    for h in range(3):
        for w in range(2):
            for i in range(r):
                for j in range(r):
                    want[:, h * r + i, w * r + j, :] = x[:, h, w, np.arange(c) * r * r + i * r + j]
    got = F.pixel_shuffle(jnp.asarray(x, f32), 2)
    assert_close(got, want)
    assert_close(F.pixel_unshuffle(got, 2), x)
    with pytest.raises(ValueError, match=r"divisible by upscale_factor\*\*2=4"):
        F.pixel_shuffle(jnp.ones((1, 2, 2, 6)), 2)


# ------------------------------------------------------------ shared properties
OPS = {
    "conv1d": (lambda x, w: F.conv1d(x, w, padding=1), [(2, 6, 3), (3, 3, 2)]),
    "conv_transpose2d": (
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
        [(2, 4, 4, 3), (3, 3, 3, 2)],
    ),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 3), [(2, 7, 5, 2)]),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (3, 2)), [(2, 7, 5, 2)]),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic"), [(2, 4, 4, 2)]),
    "instance_norm": (lambda x: F.instance_norm(x), [(2, 5, 4, 3)]),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), [(2, 3, 3, 8)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_eager_jit_vmap_and_dtypes(name):
    fn, shapes = OPS[name]
    args = [jnp.asarray(_a(*s), f32) for s in shapes]
    assert_eager_jit_vmap(fn, *args)
    ref = fn(*args)
    for dt in FLOAT_DTYPES[1:]:
        y = fn(*(a.astype(dt) for a in args))
        assert y.dtype == dt
        assert_close(y.astype(f32), ref, rtol=6e-2, atol=6e-2)
    assert_finite(fn(*(a * 1e4 for a in args)))


@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_mode_works(name):
    if name == "instance_norm":
        try:  # it reuses the shared normalisation rule of layer/group norm
            jax.jvp(F.instance_norm, (jnp.ones((1, 2, 1)),), (jnp.ones((1, 2, 1)),))
        except TypeError:
            pytest.xfail("the shared normalize() rule is still a custom_vjp")
    fn, shapes = OPS[name]
    args = [jnp.asarray(_a(*s), f32) for s in shapes]
    tangents = [jnp.asarray(_a(*s), f32) for s in shapes]
    _, jvp_val = jax.jvp(fn, args, tangents)
    # the directional derivative against reverse mode: <J t, u> = <t, J^T u>
    u = jnp.asarray(_a(*jvp_val.shape), f32)
    vjp = jax.vjp(fn, *args)[1](u)
    lhs = float(jnp.sum(jvp_val * u))
    rhs = sum(float(jnp.sum(t * v)) for t, v in zip(tangents, vjp, strict=True))
    assert abs(lhs - rhs) <= 1e-3 * (abs(lhs) + 1)


NEW_ENTRIES = (
    "conv1d",
    "conv_transpose2d",
    "adaptive_",
    "interpolate",
    "instance_norm",
    "pixel_shuffle",
)


def _entries():
    return [n for n in fdl.grads.registry() if n.startswith(NEW_ENTRIES)]


@pytest.mark.parametrize("name", _entries())
def test_registered_rule_is_live(name):
    # tests/test_grads.py runs grads.check on every entry; here: the public gradient is the rule
    entry = fdl.grads.registry()[name]
    with jax.enable_x64(True):
        args = tuple(jnp.asarray(a) for a in entry.examples()[0])
        y, vjp = jax.vjp(entry.public, *(args[i] for i in entry.argnums))
        g = jnp.asarray(np.random.default_rng(3).standard_normal(y.shape))
        hand = entry.backward(*args, g)
        hand = hand if isinstance(hand, tuple) else (hand,)
        for a, h in zip(vjp(g), hand, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(h), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------ layers
nn = fdl.nn


def test_layers_backprop_equals_jax_grad():
    """``nn.backprop`` chains the hand rules of every new layer; equal to ``jax.grad``."""
    image_model = nn.Sequential(
        nn.ConvTranspose2d(6, 3, stride=2, padding=1, output_padding=1),
        nn.InstanceNorm(affine=True),
        nn.ReLU(),
        nn.Residual(
            nn.Sequential(nn.Conv2d(4, 3, stride=2, padding=1), nn.ReLU()),
            shortcut=nn.Conv2d(4, 1, stride=2),
        ),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.PixelShuffle(2),
        nn.AdaptiveMaxPool2d((5, 3)),
        nn.AdaptiveAvgPool2d(2),
        nn.Identity(),
        nn.Flatten(),
        nn.Linear(3),
    )
    seq_model = nn.Sequential(
        nn.Conv1d(5, 3, padding="same"), nn.Tanh(), nn.Flatten(), nn.Linear(2)
    )
    for model, shape in ((image_model, (2, 4, 4, 3)), (seq_model, (2, 7, 3))):
        x = jnp.asarray(_a(*shape), f32)
        params, state = model.init(jax.random.key(0), shape)
        y, _ = model.apply(params, state, x)
        g = jnp.asarray(_a(*y.shape), f32)

        def loss(p, x, model=model, state=state, g=g):
            return jnp.sum(model.apply(p, state, x)[0] * g)

        auto = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
        hand = jax.jit(
            lambda p, x, model=model, state=state, g=g: nn.backprop.backward(model, p, state, x, g)
        )(params, x)
        assert_close(hand, auto, rtol=1e-4, atol=1e-5)


def test_instance_norm_layer_running_statistics_as_pytorch():
    """PyTorch: stats of each instance, averaged over the batch; unbiased variance."""
    layer = nn.InstanceNorm(track_running_stats=True, momentum=0.1)
    x = _a(3, 4, 5, 2) * 2 + 1
    params, state = layer.init(jax.random.key(0), x.shape)
    y, new = layer.apply(params, state, jnp.asarray(x, f32), train=True)
    mean = x.mean(axis=(1, 2)).mean(0)
    var = x.var(axis=(1, 2), ddof=1).mean(0)
    assert_close(new["running_mean"], 0.1 * mean, rtol=1e-5, atol=1e-6)
    assert_close(new["running_var"], 0.9 + 0.1 * var, rtol=1e-5, atol=1e-6)
    mu, v = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    assert_close(y, (x - mu) / np.sqrt(v + 1e-5), rtol=1e-5, atol=1e-5)
    y_eval, same = layer.apply(params, new, jnp.asarray(x, f32))
    rm, rv = np.asarray(new["running_mean"]), np.asarray(new["running_var"])
    assert_close(y_eval, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-5, atol=1e-5)
    assert same is new
    g = jnp.ones_like(y_eval)
    hand = layer.backward(params, new, jnp.asarray(x, f32), g)[1]
    assert_close(hand, np.ones(x.shape) / np.sqrt(rv + 1e-5), rtol=1e-5, atol=1e-6)


def test_layer_inits_follow_pytorch_and_constructors_are_keyword_only():
    params, _ = nn.ConvTranspose2d(8, 3, groups=2).init(jax.random.key(0), (1, 5, 5, 6))
    bound = 1 / np.sqrt(3 * 3 * 4)  # PyTorch: fan-in from weight.size(1) = out/groups
    assert params["weight"].shape == (3, 3, 6, 4) and params["bias"].shape == (8,)
    w = np.asarray(params["weight"])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    params, _ = nn.Conv1d(4, 5).init(jax.random.key(0), (1, 9, 6))
    bound = 1 / np.sqrt(5 * 6)
    assert np.abs(np.asarray(params["weight"])).max() <= bound
    assert np.abs(np.asarray(params["bias"])).max() <= bound
    with pytest.raises(TypeError):
        nn.Conv1d(4, 5, 2)  # stride is keyword-only
    with pytest.raises(TypeError):
        nn.ConvTranspose2d(4, 3, 2)
    with pytest.raises(ValueError, match=r"groups must divide out_channels"):
        nn.ConvTranspose2d(5, 3, groups=2)
    with pytest.raises(ValueError, match=r"shortcut must give the same output shape"):
        nn.Residual(nn.Linear(3), shortcut=nn.Linear(4)).init(jax.random.key(0), (2, 3))
