"""Many initial-weight sets trained at once, one module per framework with the same functions in each."""
