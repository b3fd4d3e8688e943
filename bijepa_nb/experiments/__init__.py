"""The paper's experiments on top of ``core``: the registry, the batched pipeline,
baselines, MNIST, sweeps and reproductions, the future-work models."""
