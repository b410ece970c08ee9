"""One module per framework, each a readable MLP; see shared.registry for how they are found."""
