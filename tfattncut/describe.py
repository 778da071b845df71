"""What a configuration builds: parameter counts and NCE feature shapes (launch.describe)."""
from tfattncut.methods import build_method


def describe(config):
    """JSON-ready report: each network's parameter count (selectors with weights count in F,
    and are listed), and for methods with a generator of numbered layers the NCE feature
    shapes [H, W, C] at the configured crop size. Built as training builds it (under
    --mixed_precision's policy)."""
    method = build_method(config)
    counts = {name: net.count_params() for name, net in method.networks.items()}
    report = {"model": config.model, "crop_size": config.crop_size,
              "parameters": {**counts, "total": sum(counts.values())}}
    projector = getattr(method, "projector", None)
    if projector is not None:
        report["selector"] = config.selector
        report["parameters"]["selectors_in_projector"] = {
            s.name: s.count_params() for s in projector.selectors if s.weights}
    generator = getattr(method, "generator", None)
    if hasattr(generator, "feature_shapes"):
        shapes = generator.feature_shapes(config.nce_layers, config.crop_size)
        report["nce_features"] = {str(layer): shape
                                  for layer, shape in zip(config.nce_layers, shapes)}
    return report
