"""Neural network models."""

from .irn import IRN, IRNConfig, Rescaled, count_parameters

__all__ = ["IRN", "IRNConfig", "Rescaled", "count_parameters"]
