"""Top-k accuracy."""

import torch

__all__ = ["compute_accuracy"]


def compute_accuracy(
    output: torch.Tensor | tuple | list, target: torch.Tensor, topk: tuple[int, ...] = (1,)
) -> list[torch.Tensor]:
    """Top-k accuracy in percent.

    Args:
        output: logits ``(batch, num_classes)``; for a tuple/list, its first element is used.
        target: labels ``(batch,)``.
        topk: the k values.

    Returns:
        One 1-element float tensor per k, in percent (e.g. ``[tensor([75.])]``).
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()  # (maxk, batch)
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res
