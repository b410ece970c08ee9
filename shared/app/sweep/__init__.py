"""`xor-rosetta sweep`: convergence studies over many initial-weight sets, their engine, report and basin."""
