"""Training (needs the ``train`` extra: torch). Nothing in the runtime imports this package."""
