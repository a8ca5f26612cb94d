"""Stateless neural-network ops (the ``torch.nn.functional`` of functional_dl)."""

__all__: list[str] = []
