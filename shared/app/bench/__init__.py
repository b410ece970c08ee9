"""`xor-rosetta bench`: the speed of every variant, and of the batched sweep."""
