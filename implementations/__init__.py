"""One module per framework, each a readable MLP that imports only the core (`xor_rosetta`);
`xor_rosetta.registry` finds them by name."""
