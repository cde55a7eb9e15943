"""A Dassl 0.6.3 API-compatible engine for prompt learning on CLIP, written for current PyTorch.

Module paths, names, signatures and defaults follow Dassl.pytorch 0.6.3 (the engine under CoOp,
CoCoOp, MaPLe, KgCoOp and SEP), so trainer and dataset files written for those code bases run
unchanged. See ``docs/DESIGN.md`` and ``ENGINE_COMPAT.md`` for the slice of the API offered and
for what differs from upstream (atomic, resumable checkpoints; schedulers without ``verbose``).
"""

__version__ = "0.6.3"
