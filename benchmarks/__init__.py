"""The benchmark (``python -m benchmarks``: the speed tables, never asserted) and the GPU check
(``python -m benchmarks.gpu_check``). They measure fnn's own machinery where that is the point (the
loop's compilation cache, the fit_many compiler options); the import contracts in pyproject.toml list
those uses."""
