"""Data: the toy problems of the tutorial and the small real ones, as arrays (``datasets.py``: XOR,
rings, moons, spirals, blobs, scikit-learn's digits, MNIST-1D, MNIST from local files), and their
preparation (``preprocessing.py``: one-hot, standardise, a stratified split). Nothing is downloaded.
Independent of the rest of fnn (it imports only the shared argument checks)."""

from fnn.data import datasets, preprocessing

__all__ = ["datasets", "preprocessing"]
