"""Tools for the maintainers, not tests: the README generator (``python -m tools.readme``), the API fuzzer's
long budget (``python -m tools.fuzz_api``) and the mutation checks of the test suite (``python -m tools.mutations``)."""
