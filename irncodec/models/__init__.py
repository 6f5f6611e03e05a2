"""Neural network models."""

from .irn import IRN, IRNConfig, count_parameters

__all__ = ["IRN", "IRNConfig", "count_parameters"]
