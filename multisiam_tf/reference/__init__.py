"""A peer reference in plain PyTorch (the optional extra `make torch-reference`): a minimal BYOL
whose backbone loads 1:1 into this project's Keras ResNet. Nothing outside this package and
scripts/compare_reference.py imports it, so the core never needs torch."""
