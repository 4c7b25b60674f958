"""How a sweep's networks are cut into blocks: by count, or by what fits in memory."""

from __future__ import annotations

# 1 GiB of weights per block keeps a paper-scale cell within a CPU's memory (one network at
# d = k = 10⁴ with L = 6 hidden layers is 2.4 GB: then one at a time); on a GPU blocks of
# this size are large enough to keep it busy.
NET_BYTES = 1 << 30


def net_block(n_net: int, bytes_per_net: int, budget: int = NET_BYTES) -> int:
    """The largest divisor of ``n_net`` whose weights fit ``budget`` (at least 1).

    A divisor, so that every block has the same shape and compiles once.
    """
    fit = max(1, budget // max(bytes_per_net, 1))
    return max(b for b in range(1, n_net + 1) if n_net % b == 0 and b <= fit)


def ranges(n_net: int, size: int) -> list[tuple[int, int]]:
    """Networks ``0 … n_net − 1`` in consecutive blocks ``[start, stop)`` of ``size`` (the last may be shorter)."""
    return [(b, min(b + size, n_net)) for b in range(0, n_net, size)]
