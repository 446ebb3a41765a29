"""Model presets, multi-task SFT datasets and the TRL training loop."""
