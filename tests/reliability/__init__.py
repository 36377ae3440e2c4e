"""The reliability suite: real worker processes, real signals, and an execution ledger kept outside sitq.

A package, so that worker processes import its task functions by one name (`reliability.tasks`) with
only `tests/` on their path; see `harness` for how to write a test with it.
"""
