"""The host: chains of processors (gain, gate, models, EQ, cabinet IR, DC blocker, mix) and presets."""
