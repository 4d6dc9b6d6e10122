"""Sources: raw records and their positions from JSONL files or Kafka.

Submodules are imported on demand so that reading files never loads the Kafka
client.
"""
