"""Scaling ``ciwatch run`` out: partitioned stages whose state moves with the partition."""
