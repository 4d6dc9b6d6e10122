"""Sigma rules as a ciwatch input: convert them into rule packs (``ciwatch sigma convert``).

Built on pySigma; see docs/sigma.md for what maps to what and what does not convert.
"""

from detector.sigma.convert import Conversion, Converted, Skipped, convert_texts
from detector.sigma.packs import convert_paths, write_pack

__all__ = ["Conversion", "Converted", "Skipped", "convert_paths", "convert_texts", "write_pack"]
