"""Docs generators: the idiom guide, the maths, the seed listings and the documentation site."""
