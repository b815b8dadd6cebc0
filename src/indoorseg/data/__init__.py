"""Datasets: NYU Depth v2 download and preparation, synthetic rooms, the training dataset."""
