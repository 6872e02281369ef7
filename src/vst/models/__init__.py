"""Models: the offline tiny Qwen2.5-VL, loading checkpoints, and turning Samples/messages into tensors."""
