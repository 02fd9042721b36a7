"""Thin LightningModule around PBETransformer: loss, metrics, optimizer, LR schedule.

The model file stays free of Lightning; everything about training loops lives here.
A batch is a dict: values (B, P) float, shown (B, P) bool, tokens (B, T) long laid out
``BOS t1 ... tn EOS PAD ...``.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import lightning as L
import torch
import torch.nn.functional as F

from models.errors import ModelError
from models.pbe_transformer import PAD, ModelConfig, PBETransformer


def warmup_cosine(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over warmup_steps, cosine decay to min_lr_ratio at max_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps  # never 0, so the first step already learns
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class PBELitModule(L.LightningModule):
    """Teacher-forced training of a PBETransformer with AdamW and warmup + cosine LR."""

    def __init__(self, model_config: ModelConfig | dict, lr: float, weight_decay: float,
                 warmup_steps: int, max_steps: int, label_smoothing: float = 0.0,
                 min_lr_ratio: float = 0.1, grad_clip: float = 1.0):
        super().__init__()
        # A checkpoint stores hyperparameters as plain data, so accept the dict form too.
        if isinstance(model_config, dict):
            model_config = ModelConfig(**model_config)
        problems = []
        if lr <= 0:
            problems.append(f"lr must be > 0, got {lr}")
        if weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {weight_decay}")
        if warmup_steps < 0 or max_steps < 1:
            problems.append(f"warmup_steps must be >= 0 and max_steps >= 1, got {warmup_steps}, {max_steps}")
        if not 0.0 <= label_smoothing < 1.0:
            problems.append(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            problems.append(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        if not grad_clip >= 0.0:  # NaN fails too
            problems.append(f"grad_clip must be >= 0 (0 disables clipping), got {grad_clip}")
        if problems:
            raise ModelError("invalid PBELitModule settings: " + "; ".join(problems))
        self.save_hyperparameters({
            "model_config": asdict(model_config), "lr": lr, "weight_decay": weight_decay,
            "warmup_steps": warmup_steps, "max_steps": max_steps,
            "label_smoothing": label_smoothing, "min_lr_ratio": min_lr_ratio, "grad_clip": grad_clip,
        })
        self.skipped_steps = 0  # optimizer steps skipped because the gradient was not finite
        self.model = PBETransformer(model_config)

    def forward(self, values: torch.Tensor, shown: torch.Tensor, tokens_in: torch.Tensor) -> torch.Tensor:
        return self.model(values, shown, tokens_in)

    def _step(self, batch: dict, label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss, logits (B, T-1, V) and targets (B, T-1) for a batch under teacher forcing."""
        tokens = batch["tokens"]  # (B, T)
        inputs, targets = tokens[:, :-1], tokens[:, 1:]  # predict token t+1 from tokens <= t
        logits = self.model(batch["values"], batch["shown"], inputs)  # (B, T-1, V)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD,
                               label_smoothing=label_smoothing)
        return loss, logits, targets

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._step(batch, self.hparams.label_smoothing)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["tokens"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int):
        # Validation loss without label smoothing, so runs with different smoothing compare.
        loss, logits, targets = self._step(batch, 0.0)
        real = targets != PAD  # (B, T-1); EOS counts, padding does not
        correct = (logits.argmax(-1) == targets) & real
        B = targets.shape[0]
        self.log("val/loss", loss, prog_bar=True, batch_size=B)
        self.log("val/token_acc", correct.sum() / real.sum().clamp(min=1), batch_size=B)
        # A sequence is right when every real token is (teacher-forced, not generated).
        self.log("val/seq_acc", (correct == real).all(dim=1).float().mean(), batch_size=B)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Clip the global gradient norm to grad_clip (0: measure only); skip a step whose gradient is not finite.

        Lightning calls this after backward (and after the mixed-precision unscale), before
        the step. Under DDP the gradients are already all-reduced, so every rank sees the
        same norm and skips the same steps. Adam's update is invariant to the gradient's
        scale, so clipping bounds the effect of one outlier batch on the moments rather than
        the step size; a non-finite gradient (an overflow) would make every weight NaN, so
        that step is dropped instead (the parameters keep their values, the lr schedule
        moves on) and counted in train/skipped_steps.
        """
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return
        limit = self.hparams.get("grad_clip", 0.0) or float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit, error_if_nonfinite=False)
        if not torch.isfinite(norm):
            for p in params:
                p.grad = None  # AdamW leaves parameters without a gradient untouched
            self.skipped_steps += 1
        self.log("train/grad_norm", norm, batch_size=1)
        self.log("train/skipped_steps", float(self.skipped_steps), batch_size=1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["skipped_steps"] = self.skipped_steps

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.skipped_steps = int(checkpoint.get("skipped_steps", 0))

    def configure_optimizers(self):
        hp = self.hparams
        # Weight decay on matrices only (nanoGPT): biases and LayerNorm gains are not decayed.
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": hp.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=(0.9, 0.95))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, hp.warmup_steps, hp.max_steps, hp.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
