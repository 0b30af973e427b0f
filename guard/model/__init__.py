"""The model: network, training, calibration, novelty, model card, loading, inference, tracking.

Importing this package does not import torch. `artifact` (verify and load), `card`, `labels`,
`calibration`, `novelty`, `health` and `tracker` are torch-free at import; `network`,
`inference`, `training`, `runner` and `predictor` need torch, and only commands that use the
model import them.
"""
