"""``python -m benchmarks``: the speed tables (see :mod:`benchmarks.benchmark`)."""

from benchmarks.benchmark import main

if __name__ == "__main__":
    main()
