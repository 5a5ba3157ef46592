"""Nearest-neighbour indexes per interaction and the candidate sets written from them."""
