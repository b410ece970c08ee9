"""The application on top of the core: the `xor-rosetta` command line, the runner, reports, golden files and
benchmarks. Nothing in the core or in an implementation imports it."""
