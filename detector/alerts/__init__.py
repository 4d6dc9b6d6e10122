"""Alerts: detections given stable ids, folded within suppression periods, explained."""

from detector.alerts.model import Alert, alert_id
from detector.alerts.suppression import Suppressor

__all__ = ["Alert", "Suppressor", "alert_id"]
