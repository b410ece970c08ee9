"""The run wing: training implementations in workers, judging them against the reference, reports and golden files."""
