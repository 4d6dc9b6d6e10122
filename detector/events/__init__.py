"""Events: vendor JSON → normalized Event (parsers, taxonomy, envelopes, dead letters)."""
