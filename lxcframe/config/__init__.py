"""LXC's container config format: parsing, key declarations, the immutable result, writing back."""
