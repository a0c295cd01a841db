"""When advocates are on shift: ``helpline.office_hours`` (the settings check the same
shifts, and the config imports no feature)."""

from helpline.office_hours import DAYS, OfficeHours, Shift, parse_shift

__all__ = ["DAYS", "OfficeHours", "Shift", "parse_shift"]
