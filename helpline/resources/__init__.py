"""The service directory: import (Open Referral HSDS 3.x, or a simple YAML form), openings,
matching, and self-paced browsing of results in the conversation."""

from helpline.resources.importer import (
    SAMPLE_DIRECTORY,
    ImportResult,
    import_directory,
    read_directory,
    seed_if_empty,
)
from helpline.resources.model import NEEDS, Capacity, Problem, Service
from helpline.resources.store import Directory, OpeningsError, set_openings

__all__ = [
    "NEEDS",
    "SAMPLE_DIRECTORY",
    "Capacity",
    "Directory",
    "ImportResult",
    "OpeningsError",
    "Problem",
    "Service",
    "import_directory",
    "read_directory",
    "seed_if_empty",
    "set_openings",
]
