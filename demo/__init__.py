"""The embedded demo: a generated world (world.py), the tiny CLIP pretrained on it (pretrain.py)
and its committed weights (weights/demo_clip.pt)."""
