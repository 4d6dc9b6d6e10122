"""Feature layer: durations, settings, window primitives and the feature store."""
