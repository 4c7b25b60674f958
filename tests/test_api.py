"""Pins the public API and the signature conventions of shared/STYLE.md.

Conventions checked for every public function:
* a function that draws randomness takes a parameter named ``key``, with no default, first
  (or second, right after a static ``net: Network``);
* ``params`` comes before inputs; ``net`` (structure) before ``params``;
* optional arguments are keyword-only, except the few positional ones listed in
  ``POSITIONAL_OPTIONAL`` (the papers' natural call forms, e.g. ``two_layer(d, k, "tanh")``).
"""

import inspect

import jaxadv
from jaxadv import attacks, data, experiments, kernels, nets, theory, train

PUBLIC = {
    "jaxadv": {"Evaluation", "Network", "__version__", "attacks", "data", "evaluate", "forward", "init_many", "kernels", "nets", "theory", "train", "value_and_input_grad"},
    "jaxadv.theory": {"correlation_gap_asymptote", "iterated_relu_correlation", "iterated_relu_correlation_gap",
                      "relu_correlation", "relu_correlation_gap", "relu_kernel"},
    "jaxadv.nets": {"ACTIVATIONS", "Network", "Params", "layers", "lenet", "linear", "materialize",
                    "matrix_free", "mlp", "resnet",
                    "sequential", "shallow", "small_cnn", "smoothness_m", "two_layer"},
    "jaxadv.kernels": {"ChunkPlan", "Evaluation", "Layout", "MemoryBudgetError", "evaluate", "forward", "init_many",
                       "layout", "map_nets", "map_pairs", "plan", "use_devices", "value_and_input_grad"},
    "jaxadv.data": {"DATASETS", "IMAGE_SHAPES", "ChecksumError", "CorruptDataError", "DatasetNotFoundError",
                    "DownloadError", "ImageDataset", "available", "download", "gaussian", "load",
                    "resolve_data_dir", "sphere"},
    "jaxadv.attacks": {
        "NORMS", "AttackResult", "GradientFlowResult", "LineSearchResult", "MinNormResult", "OneStepResult",
        "RobustAccuracy", "SharedLineSearchResult", "fgsm", "gradient_flow", "line_search", "min_norm",
        "one_step", "pgd", "random_directions", "robust_accuracy", "shared_line_search", "universal_direction",
    },
    "jaxadv.experiments": {"EXPERIMENTS", "CellStore", "Claim", "RunOptions", "config_of", "markdown_table", "run", "run_cells", "write_json", "write_report", "write_text"},
    "jaxadv.train": {
        "GrowingLR", "KKTResult", "LossNormalisedLR", "MarginSet", "STOP_REASONS", "SharedPerturbation",
        "TrainHistory", "TrainResult", "constant_lr", "growing_lr", "inner_product_bound", "kkt_residuals",
        "log_loss", "log_losses", "loss", "loss_normalised_lr", "margin_set", "margins", "nnls",
        "normalised_margin", "orthogonal_dataset", "robust_network", "scale_by_loss", "shared_perturbation",
        "sphere_dataset", "train_margin", "ClassifierResult", "accuracy", "logistic_loss", "train_classifier",
    },
}
# robust_network(X, y, c): Vardi et al.'s Thm 3.1 names c as the construction's third argument.
# growing_lr(lr0) / loss_normalised_lr(lr): a schedule's rate comes first, as in optax.
POSITIONAL_OPTIONAL = {"activation", "radius", "std", "c", "lr0", "lr"}
RANDOM = {"init_many", "sphere", "gaussian", "pgd", "robust_accuracy", "random_directions", "train_margin", "sphere_dataset", "train_classifier"}


def _modules():
    return {
        "jaxadv": jaxadv,
        "jaxadv.nets": nets,
        "jaxadv.kernels": kernels,
        "jaxadv.data": data,
        "jaxadv.attacks": attacks,
        "jaxadv.train": train,
        "jaxadv.theory": theory,
        "jaxadv.experiments": experiments,
    }


def test_public_names_are_pinned():
    for name, mod in _modules().items():
        assert set(mod.__all__) == PUBLIC[name], name
        for attr in mod.__all__:
            assert hasattr(mod, attr), f"{name}.{attr}"


def _functions():
    for mod in _modules().values():
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            if inspect.isfunction(obj) or (callable(obj) and hasattr(obj, "__wrapped__") and not isinstance(obj, type)):
                yield attr, obj


def test_signature_conventions():
    seen = set()
    for attr, fn in _functions():
        sig = inspect.signature(fn)
        names = list(sig.parameters)
        seen.add(attr)
        if attr in RANDOM:
            assert "key" in names, attr
            pos = names.index("key")
            assert pos == (1 if names[0] == "net" else 0), (attr, names)
            assert sig.parameters["key"].default is inspect.Parameter.empty, attr
        if "params" in names:
            assert names.index("params") < min(names.index(n) for n in ("xs", "x") if n in names) if {"xs", "x"} & set(names) else True
            if "net" in names:
                assert names.index("net") < names.index("params"), attr
        for p in sig.parameters.values():
            if p.default is not inspect.Parameter.empty and p.name not in POSITIONAL_OPTIONAL:
                assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{attr}({p.name}=…) should be keyword-only"
    assert {"two_layer", "mlp", "shallow", "linear", "evaluate", "forward", "init_many", "sphere", "map_pairs"} <= seen
    assert {"one_step", "min_norm", "pgd", "line_search", "train_margin", "robust_network"} <= seen


def test_attack_results_share_the_common_fields():
    common = ("x_adv", "distance", "success", "f_clean", "f_adv", "n_forward", "n_grad")
    for name in ("OneStepResult", "LineSearchResult", "GradientFlowResult", "MinNormResult", "AttackResult"):
        fields = getattr(attacks, name)._fields
        assert set(common) <= set(fields), (name, fields)


def test_networks_are_named_tuples_of_pure_functions():
    net = nets.mlp(3, [2])
    assert isinstance(net, tuple) and net._fields[:2] == ("init", "apply")
    init, apply = net[:2]
    assert callable(init) and callable(apply)
    assert net.input_shape == (3,) and net.d == 3


def test_the_library_never_flips_global_flags():
    import jax

    before = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision, jax.config.jax_platforms)
    net = nets.mlp(4, [3])
    kernels.evaluate(net, kernels.init_many(net, jax.random.key(0), 2), data.sphere(jax.random.key(1), 2, 4))
    assert (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision, jax.config.jax_platforms) == before
