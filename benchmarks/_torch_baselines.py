"""The same networks in PyTorch, run through the attack libraries people use today.

Foolbox (DDN, DeepFool) and torchattacks (FAB) assume image inputs in a box [0, 1] and a
classifier with logits. The inputs of the papers live on the sphere of radius √d, so each
network is wrapped as a two-logit classifier of a box variable u ∈ [0, 1]^d:

    x = c + s·(u − 1/2),   logits(u) = (0, f(x)),

with c = 0 and s = 2R, R = max|x_i| + margin, a box wide enough that the attacks never
touch its faces. Distances found in u are multiplied by s to be compared in x. The class is
1 when f > 0, so a label change is exactly a strict sign change of f.

Gradient evaluations are counted by a custom autograd function whose backward increments a
counter: each backward pass over a batch is one gradient evaluation per sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import torch
except ImportError:  # the baselines are optional
    torch = None


class _Counter:
    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0


def _count_fn(counter: _Counter):
    class Count(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            counter.forward += 1
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            counter.backward += 1
            return g

    return Count.apply


def torch_network(family: str, params: dict[str, Any]):
    """A ``torch.nn.Module`` computing the same f as jaxadv's ``two_layer`` or ``mlp`` (bias-free)."""
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if family == "two_layer":
                self.Ws = [t(params["W"])]
                self.readout = t(params["a"]) / np.sqrt(params["a"].shape[-1])
            else:
                self.Ws = [t(layer["W"]) for layer in params["hidden"]]
                self.readout = t(params["readout"]["w"])

        def forward(self, x):  # x: (batch, d) -> (batch,)
            h = x
            for W in self.Ws:
                h = torch.relu(h @ W.T)
            return h @ self.readout

    return Net().eval()


class BoxClassifier(torch.nn.Module if torch is not None else object):
    """Two-logit classifier of u ∈ [0, 1]^d, with x = s·(u − 1/2); counts evaluations."""

    def __init__(self, net, scale: float):
        super().__init__()
        self.net = net
        self.scale = scale
        self.counter = _Counter()
        self._count = _count_fn(self.counter)

    def forward(self, u):
        u = self._count(u)
        f = self.net(self.scale * (u - 0.5))
        return torch.stack([torch.zeros_like(f), f], dim=1)


def _run_foolbox(attack, model: BoxClassifier, u: "torch.Tensor", labels: "torch.Tensor"):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
    _, advs, success = attack(fmodel, u, labels, epsilons=None)
    return advs, success


def run_baseline(name: str, family: str, params_one: dict, xs: np.ndarray, *, margin: float = 4.0) -> dict[str, Any]:
    """Runs baseline ``name`` on one network and inputs ``xs`` (n, d); distances in x units (ℓ2)."""
    import time

    torch.manual_seed(0)
    net = torch_network(family, params_one)
    R = float(np.max(np.abs(xs))) + margin
    scale = 2 * R
    model = BoxClassifier(net, scale).eval()  # Foolbox warns about a model in training mode
    u = torch.tensor(xs / scale + 0.5, dtype=torch.float32)
    with torch.no_grad():
        f = net(torch.tensor(xs, dtype=torch.float32))
    labels = (f > 0).long()
    t0 = time.perf_counter()
    if name == "foolbox_ddn":
        import foolbox as fb

        advs, success = _run_foolbox(fb.attacks.DDNAttack(), model, u, labels)
    elif name == "foolbox_deepfool":
        import foolbox as fb

        advs, success = _run_foolbox(fb.attacks.L2DeepFoolAttack(candidates=2), model, u, labels)
    elif name == "torchattacks_fab":
        import torchattacks

        # FAB reports only adversarials within ``eps`` (its robust-accuracy mode); an eps far
        # beyond every distance in the box makes it the minimum-norm attack it is designed as.
        atk = torchattacks.FAB(model, norm="L2", eps=10.0, n_classes=2, n_restarts=1, seed=0)
        advs = atk(u, labels)
        with torch.no_grad():
            success = model(advs).argmax(1) != labels
    else:
        raise ValueError(f"unknown baseline {name!r}")
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        f_adv = net(scale * (advs - 0.5))
        # Verify with the same strict rule as jaxadv.
        flipped = ((f > 0) & (f_adv < 0)) | ((f < 0) & (f_adv > 0))
    dist = (torch.linalg.norm(advs - u, dim=1) * scale).numpy().astype(np.float64)
    ok = flipped.numpy()
    dist[~ok] = np.inf
    n = xs.shape[0]
    return {
        "distance": dist,
        "success": ok,
        "claimed_success": np.asarray(success, bool),
        "n_grad_per_sample": model.counter.backward,  # every backward covers every sample of the batch
        "n_forward_per_sample": model.counter.forward,
        "seconds": seconds,
        "pairs": n,
    }


def available() -> dict[str, bool]:
    out = {"torch": torch is not None}
    for mod in ("foolbox", "torchattacks"):
        try:
            __import__(mod)
            out[mod] = True
        except Exception:  # noqa: BLE001 - any import failure means "not usable here"
            out[mod] = False
    return out
