"""helpline: a safe, trauma-informed helpline bot driven by YAML flows."""

__version__ = "0.1.0"
