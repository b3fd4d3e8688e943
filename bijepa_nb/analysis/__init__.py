"""Statistics, verdicts, readers of saved results, tables and figures."""
