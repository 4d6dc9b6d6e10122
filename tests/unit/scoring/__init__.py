"""Scoring layer: detectors, calibration, model files and the anomaly scorer."""
