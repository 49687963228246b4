"""Exponential moving average of a model's weights (evaluated and exported instead of the raw ones).

After each optimiser step ``ema = d_t * ema + (1 - d_t) * weights`` for every floating-point
tensor of the state dict (parameters and batch-norm statistics alike; integer buffers such as
``num_batches_tracked`` are copied), with the warm-up ``d_t = min(decay, (1 + t) / (10 + t))``
so the first steps are not dominated by the random initialisation. Not in the paper (docs/DESIGN.md,
"Weight averaging"); the YOLO family of detectors uses it.
"""

from __future__ import annotations

import torch


class ModelEma:
    """A shadow copy of ``model``'s state dict, on the model's device, never trained."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ModelEma: decay={decay}, expected 0 < decay < 1")
        self.decay = decay
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next update uses (warm-up ramp, then ``decay``)."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        shadows, current = [], []
        for k, v in model.state_dict().items():
            shadow = self.state[k]
            if shadow.is_floating_point():
                shadows.append(shadow)
                current.append(v.detach())
            else:
                shadow.copy_(v)
        torch._foreach_lerp_(shadows, current, 1.0 - d)  # one fused pass over all tensors
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.updates = int(saved["updates"])
        for k, v in saved["state"].items():
            self.state[k].copy_(v)
