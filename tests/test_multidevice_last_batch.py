"""A last batch that does not split over the devices is refused before any compute."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(r"""
    import jax, numpy as np, pytest
    import functional_dl as fdl

    assert len(jax.devices()) == 2
    model = fdl.nn.Sequential(fdl.nn.Linear(3))
    opt = fdl.optim.sgd(0.1)
    x = np.ones((35, 4), np.float32)
    y = np.zeros(35, np.int32)
    xent = fdl.losses.cross_entropy

    def state():
        return fdl.train.create_train_state(jax.random.key(0), model, opt, (1, 4))

    calls = []
    def counting_loss(out, t):
        calls.append(1)
        return xent(out, t)

    # 35 = 2 x 16 + 3: the last batch of 3 does not split over 2 devices
    with pytest.raises(ValueError, match=r"last batch of each epoch holds 3 examples.*2 devices"):
        fdl.train.fit(state(), model, counting_loss, opt, (x, y), epochs=1, batch_size=16,
                      drop_last=False, progress=False)
    assert not calls  # refused before tracing or running anything
    # a remainder that divides is trained on, every example once
    out = fdl.train.fit(state(), model, xent, opt, (x[:34], y[:34]), epochs=1, batch_size=16,
                        drop_last=False, progress=False)
    assert int(out.state.step) == 3
    for mesh in (fdl.train.data_parallel_mesh(), fdl.train.make_mesh(data=2)):
        step = fdl.train.make_train_step(model, xent, opt, mesh=mesh)
        with pytest.raises(ValueError, match=r"batch holds 3 examples.*2 devices"):
            step(state(), (x[:3], y[:3]))
    print("ok")
""")


def test_last_batch_not_dividing_over_devices_is_refused_up_front():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
