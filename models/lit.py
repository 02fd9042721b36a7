"""Thin LightningModule around any registered architecture: loss, metrics, optimizer, LR schedule.

The model files stay free of Lightning; everything about training loops lives here.
A batch is a dict: values (B, P) float, shown (B, P) bool, tokens (B, T) long laid out
``BOS t1 ... tn EOS PAD ...``.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import lightning as L
import torch
import torch.nn.functional as F

from models import registry
from models.blocks import PAD
from models.errors import ModelError


SCHEDULES = ("cosine", "linear", "constant")


def lr_multiplier(step: int, progress: float, warmup_steps: int, schedule: str, min_lr_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over warmup_steps, then the schedule over ``progress`` in [0, 1].

    cosine and linear decay to min_lr_ratio at progress 1; constant stays at 1.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps  # never 0, so the first step already learns
    p = min(1.0, max(0.0, progress))
    if schedule == "cosine":
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "linear":
        return min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 - p)
    return 1.0


def warmup_cosine(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over warmup_steps, cosine decay to min_lr_ratio at max_steps."""
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return lr_multiplier(step, progress, warmup_steps, "cosine", min_lr_ratio)


class PBELitModule(L.LightningModule):
    """Teacher-forced training of a registered architecture with AdamW and warmup + cosine LR.

    ``arch`` names the architecture (``models.registry``); checkpoints written before
    the registry have no ``arch`` hyperparameter and are grid64.
    """

    def __init__(self, model_config, lr: float, weight_decay: float,
                 warmup_steps: int, max_steps: int | None, label_smoothing: float = 0.0,
                 min_lr_ratio: float = 0.1, grad_clip: float = 1.0, arch: str | None = None,
                 schedule: str = "cosine", max_time_s: float | None = None):
        super().__init__()
        # A checkpoint stores hyperparameters as plain data, so accept the dict form too.
        entry = registry.get(arch) if arch else (registry.of_config(model_config)
                                                 if not isinstance(model_config, dict) else registry.get("grid64"))
        if isinstance(model_config, dict):
            model_config = entry.config_class(**model_config)
        problems = []
        if lr <= 0:
            problems.append(f"lr must be > 0, got {lr}")
        if weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {weight_decay}")
        if warmup_steps < 0 or (max_steps is not None and max_steps < 1):
            problems.append(f"warmup_steps must be >= 0 and max_steps >= 1, got {warmup_steps}, {max_steps}")
        if max_steps is None and max_time_s is None:
            problems.append("give max_steps or max_time_s (or both): the schedule needs a budget")
        if max_time_s is not None and not max_time_s > 0:
            problems.append(f"max_time_s must be > 0, got {max_time_s}")
        if schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if not 0.0 <= label_smoothing < 1.0:
            problems.append(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            problems.append(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        if not grad_clip >= 0.0:  # NaN fails too
            problems.append(f"grad_clip must be >= 0 (0 disables clipping), got {grad_clip}")
        if problems:
            raise ModelError("invalid PBELitModule settings: " + "; ".join(problems))
        self.save_hyperparameters({
            "arch": entry.name, "model_config": asdict(model_config), "lr": lr, "weight_decay": weight_decay,
            "warmup_steps": warmup_steps, "max_steps": max_steps,
            "label_smoothing": label_smoothing, "min_lr_ratio": min_lr_ratio, "grad_clip": grad_clip,
            "schedule": schedule, "max_time_s": max_time_s,
        })
        self._timer = None  # the trainer's Timer (max_time), found on first use
        self.skipped_steps = 0  # optimizer steps skipped because the gradient was not finite
        self.model = entry.build(model_config)

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

    def progress(self, step: int) -> float:
        """How much of the run's budget is spent, in [0, 1]: steps, time, or the larger of the two.

        Time is the trainer's Timer (``Trainer(max_time=...)``): training wall-clock of this
        run, validation included, carried over a resume in the checkpoint. The step part
        is counted from the end of the warmup, as warmup_cosine does.
        """
        hp = self.hparams
        done = 0.0
        if hp.max_steps:
            done = (step - hp.warmup_steps) / max(1, hp.max_steps - hp.warmup_steps)
        if hp.get("max_time_s"):
            if self._timer is None:
                from lightning.pytorch.callbacks import Timer

                trainer = self._trainer
                self._timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None) if trainer else None
            if self._timer is not None:
                done = max(done, self._timer.time_elapsed("train") / hp.max_time_s)
        return min(1.0, max(0.0, done))

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
            optimizer, lambda step: lr_multiplier(step, self.progress(step), hp.warmup_steps,
                                                  hp.get("schedule", "cosine"), hp.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
