"""Framework probes for `xor-rosetta bench`, run in the workers of each framework."""
from __future__ import annotations


def thread_counts() -> dict:
    """In the torch worker: the thread count torch chose."""
    import torch
    return {"torch.get_num_threads": torch.get_num_threads()}
