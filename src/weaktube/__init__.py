"""weaktube: action tube detection with location-weak supervision."""

__version__ = "0.1.0"
