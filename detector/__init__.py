"""ciwatch: detects attacks on CI/CD pipelines from audit logs and login events."""

__version__ = "0.1.0"
