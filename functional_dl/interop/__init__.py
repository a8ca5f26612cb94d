"""PyTorch weights in and out: state dicts (name -> NumPy array) to ``(params, state)``.

No torch import is needed: pass ``{k: v.numpy() for k, v in module.state_dict().items()}``
and get back arrays for a model built from the same ``fdl.nn`` layers in the same order.

Naming. A :func:`~functional_dl.nn.Sequential` uses PyTorch's ``nn.Sequential`` names
(``'0.weight'``, ``'3.running_mean'``; a nested Sequential ``'2.1.weight'``; layers
without parameters keep their index). A :func:`~functional_dl.nn.TransformerLM` uses

- with ``mlp='gelu'``, nanoGPT / GPT-2 names (``nn.Linear`` layout, as nanoGPT's
  ``GPT``): ``transformer.wte.weight``, ``transformer.wpe.weight``,
  ``transformer.h.{i}.ln_1.*``, ``.attn.c_attn.*``, ``.attn.c_proj.*``, ``.ln_2.*``,
  ``.mlp.c_fc.*``, ``.mlp.c_proj.*``, ``transformer.ln_f.*``, ``lm_head.weight``
  (nanoGPT's causal-mask buffers ``.attn.bias`` are accepted and ignored). Hugging
  Face's ``GPT2LMHeadModel`` stores ``Conv1D`` weights already transposed
  (``[in, out]``): transpose its ``c_attn``/``c_proj``/``c_fc`` weights first;
- with ``mlp='swiglu'``, Hugging Face LLaMA names (``rope_layout='half'``):
  ``model.embed_tokens.weight``, ``model.layers.{i}.input_layernorm.weight``,
  ``.self_attn.{q,k,v,o}_proj.weight``, ``.post_attention_layernorm.weight``,
  ``.mlp.{gate,up,down}_proj.weight``, ``model.norm.weight``, ``lm_head.weight``
  (``rotary_emb.inv_freq`` buffers are ignored; learned positions would be
  ``model.embed_positions.weight``).

A ``TransformerEncoderLayer``/``TransformerDecoderLayer`` uses PyTorch's names
(``self_attn.in_proj_weight``, ``self_attn.out_proj.*``, ``multihead_attn.*`` for the
cross-attention, ``linear1/2.*``, ``norm1/2/3.*``); recurrent layers PyTorch's
``weight_ih_l0``-style names.

With ``tie_embeddings=True`` a ``lm_head.weight`` in the state dict must equal the
embedding table (it is not a separate parameter) and is written back as a copy.

Layouts. Linear weights are transposed (``[out, in]`` -> ``[in, out]``), convolution
kernels go OIHW -> HWIO, and the first ``Linear`` after a ``Flatten`` of a channels-last
``[N, H, W, C]`` activation gets its input rows permuted from PyTorch's NCHW flatten
order ``(c, h, w)`` to ours ``(h, w, c)``. BatchNorm's ``num_batches_tracked`` is
accepted and ignored (and written as 0).

Extending: :data:`CONVERTERS` maps a layer's ``Layer.name`` to a function
``(params, state, shape) -> [Entry, ...]`` over the layer's abstract params/state and
the :class:`Shapes` of its input; add an entry there for a new layer type.
"""

from ._converters import CONVERTERS as CONVERTERS
from ._converters import Entry as Entry
from ._converters import Shapes as Shapes
from ._state_dict import from_torch_state_dict as from_torch_state_dict
from ._state_dict import to_torch_state_dict as to_torch_state_dict

__all__ = [
    "from_torch_state_dict",
    "to_torch_state_dict",
    "CONVERTERS",
    "Entry",
    "Shapes",
]


def __dir__() -> list[str]:
    return list(__all__)
