"""ampnet: train, stream and host neural guitar amp and pedal captures."""

__version__ = "0.1.0"
