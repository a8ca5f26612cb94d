"""Stateless neural-network ops (the ``torch.nn.functional`` of functional_dl)."""

__all__: list[str] = []

# attention and positional encodings
from ._attention import scaled_dot_product_attention as scaled_dot_product_attention  # noqa: E402
from ._positional import alibi_bias as alibi_bias  # noqa: E402
from ._positional import alibi_slopes as alibi_slopes  # noqa: E402
from ._positional import relative_position_bias as relative_position_bias  # noqa: E402
from ._positional import relative_position_bucket as relative_position_bucket  # noqa: E402
from ._positional import rope as rope  # noqa: E402
from ._positional import sinusoidal_positional_encoding as sinusoidal_positional_encoding  # noqa: E402,E501

__all__ += [
    "scaled_dot_product_attention",
    "rope",
    "sinusoidal_positional_encoding",
    "alibi_bias",
    "alibi_slopes",
    "relative_position_bucket",
    "relative_position_bias",
]
