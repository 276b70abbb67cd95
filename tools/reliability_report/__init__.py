"""tools/reliability's report generator: docs/RELIABILITY.md from the run's figures."""
