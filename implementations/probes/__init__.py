"""Framework code that the application runs in workers: the differences' probes, bench's, the seed listing's."""
