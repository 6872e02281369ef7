"""Training: rewards (pure), SFT and GRPO on Qwen2.5-VL. Importing this package does not import torch."""
