"""Optimisers and learning-rate schedules, as in ``torch.optim``: ``SGD``, ``Adam``, ``lr_scheduler``."""
from .optimizer import SGD, Adam, Optimizer
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "lr_scheduler"]
