"""Read Open Referral HSDS 3.x into plain tables of rows, each row knowing its ``file:line``.

Two forms: the tabular datapackage (a folder of CSV files, optionally described by
``datapackage.json``) and the JSON form (one service as in ``service_full.json``, a list of
services, a paged list with ``contents``, or an organization with ``services``). The JSON
form is flattened into the same tables, so both are checked by one builder.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpline.flow.yamlsource import Located, YamlSyntaxError, load_located
from helpline.resources.model import Problem

# Table (HSDS object) -> the file it lives in when datapackage.json does not say otherwise.
TABLE_FILES: dict[str, str] = {
    "organization": "organizations.csv",
    "service": "services.csv",
    "location": "locations.csv",
    "service_at_location": "service_at_location.csv",
    "address": "addresses.csv",
    "phone": "phones.csv",
    "schedule": "schedules.csv",
    "service_area": "service_areas.csv",
    "language": "languages.csv",
    "required_document": "required_documents.csv",
    "cost_option": "cost_options.csv",
    "service_capacity": "service_capacity.csv",
    "unit": "units.csv",
    "attribute": "attributes.csv",
    "taxonomy_term": "taxonomy_terms.csv",
}
PLURAL_NAMES = {file.removesuffix(".csv"): table for table, file in TABLE_FILES.items()}


@dataclass
class Row:
    file: str
    line: int
    data: dict[str, str]

    def get(self, key: str) -> str:
        return (self.data.get(key) or "").strip()


@dataclass
class Tables:
    rows: dict[str, list[Row]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # table -> display name of its file
    problems: list[Problem] = field(default_factory=list)

    def __getitem__(self, table: str) -> list[Row]:
        return self.rows.get(table, [])

    def file(self, table: str) -> str:
        return self.files.get(table, TABLE_FILES[table])

    def add(self, table: str, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)


# ------------------------------------------------------------------ CSV datapackage


def read_csv_package(path: Path) -> Tables:
    folder = path.parent if path.is_file() else path
    tables = Tables()
    files = dict(TABLE_FILES)
    package = folder / "datapackage.json"
    if package.exists():
        files.update(_package_paths(package, tables))
    if not (folder / files["service"]).exists():
        tables.problems.append(Problem(str(folder / files["service"]), 1,
                                       "no services table in this datapackage",
                                       "an HSDS datapackage needs at least services.csv"))
        return tables
    for table, name in files.items():
        csv_path = folder / name
        if csv_path.exists():
            tables.files[table] = str(csv_path)
            _read_csv(table, csv_path, tables)
    return tables


def _package_paths(package: Path, tables: Tables) -> dict[str, str]:
    try:
        data = json.loads(package.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        tables.problems.append(Problem(str(package), line, f"cannot read datapackage.json "
                                       f"({type(exc).__name__})", "fix it, or remove it to use "
                                       "the standard HSDS file names"))
        return {}
    found: dict[str, str] = {}
    resources = data.get("resources") if isinstance(data, dict) else None
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict):
            continue
        name, where = resource.get("name"), resource.get("path")
        if isinstance(name, str) and isinstance(where, str):
            table = name if name in TABLE_FILES else PLURAL_NAMES.get(name)
            inside = (package.parent / where).resolve().is_relative_to(package.parent.resolve())
            if table is not None and inside:
                found[table] = where
    return found


def _read_csv(table: str, csv_path: Path, tables: Tables) -> None:
    name = str(csv_path)
    try:
        with csv_path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, restkey="\x00extra")
            header = reader.fieldnames or []
            if "id" not in header:
                tables.problems.append(Problem(name, 1, "the header has no 'id' column",
                                               "add an id column (HSDS needs one in every table)"))
                return
            start = 2
            for data in reader:
                extra = data.pop("\x00extra", None)
                if extra or None in data.values():
                    tables.problems.append(Problem(
                        name, start, f"this row has a different number of fields than the "
                        f"header ({len(header)})", "check for a missing or extra comma, or an "
                        "unclosed quote"))
                else:
                    tables.add(table, Row(name, start, {k: v or "" for k, v in data.items()}))
                start = reader.line_num + 1
    except UnicodeDecodeError:
        tables.problems.append(Problem(name, 1, "not UTF-8 text", "save the file as UTF-8 CSV"))
    except csv.Error as exc:
        tables.problems.append(Problem(name, 1, f"not readable as CSV ({exc})",
                                       "save the file as CSV with a header row"))


# ------------------------------------------------------------------ JSON


def read_json(path: Path) -> Tables:
    tables = Tables()
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text)
    except UnicodeDecodeError:
        tables.problems.append(Problem(name, 1, "not UTF-8 text", "save the file as UTF-8"))
        return tables
    except json.JSONDecodeError as exc:
        tables.problems.append(Problem(name, exc.lineno, f"not valid JSON ({exc.msg})",
                                       "fix the syntax near this line"))
        return tables
    try:
        located = load_located(text)
    except YamlSyntaxError:  # valid JSON that YAML reads differently: lines unknown
        located = Located(data)
    flat = _Flattener(tables, name, located)
    services = list(_services_in(data))
    if not services:
        tables.problems.append(Problem(name, 1, "no services found", "give one service object, "
                                       "a list of them, or an object with 'contents' or "
                                       "'services'"))
    for where, service, org in services:
        flat.service(service, where, org)
    for table in TABLE_FILES:
        tables.files[table] = name
    return tables


JsonPath = tuple[str | int, ...]


def _services_in(data: Any) -> Iterator[tuple[JsonPath, dict[str, Any], dict[str, Any] | None]]:
    if isinstance(data, list):
        for i, item in enumerate(data):
            if isinstance(item, dict):
                yield (i,), item, None
    elif isinstance(data, dict):
        for key in ("contents", "services"):
            if isinstance(data.get(key), list):
                org = data if key == "services" else None
                for i, item in enumerate(data[key]):
                    if isinstance(item, dict):
                        yield (key, i), item, org
                return
        if "id" in data and "name" in data:
            yield (), data, None


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Flattener:
    def __init__(self, tables: Tables, name: str, located: Located) -> None:
        self.tables = tables
        self.name = name
        self.located = located
        self.seen: set[tuple[str, str]] = set()

    def add(self, table: str, obj: Any, where: JsonPath, **links: str) -> str:
        """One object as a row of ``table``; returns its id. Repeats (the JSON form nests the
        same phone or location in several places) keep the first."""
        if not isinstance(obj, dict):
            return ""
        data = {k: _text(v) for k, v in obj.items()}
        data.update({k: v for k, v in links.items() if v})
        ident = data.get("id", "")
        if table != "service" and ident:
            if (table, ident) in self.seen:
                return ident
            self.seen.add((table, ident))
        self.tables.add(table, Row(self.name, self.located.position(where).line, data))
        return ident

    def each(self, obj: dict[str, Any], key: str, where: JsonPath
             ) -> Iterator[tuple[dict[str, Any], JsonPath]]:
        items = obj.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield item, (*where, key, i)

    def service(self, obj: dict[str, Any], where: JsonPath, org: dict[str, Any] | None) -> None:
        org = obj.get("organization") if isinstance(obj.get("organization"), dict) else org
        org_id = ""
        if org is not None:
            org_id = self.add("organization", {"id": org.get("id"), "name": org.get("name")},
                              where if org is not obj.get("organization")
                              else (*where, "organization"))
            for phone, at in self.each(org, "phones", ()):
                self.add("phone", phone, at, organization_id=org_id)
        sid = self.add("service", obj, where, organization_id=org_id)
        for table, key in (("phone", "phones"), ("schedule", "schedules"),
                           ("service_area", "service_areas"), ("language", "languages"),
                           ("required_document", "required_documents"),
                           ("cost_option", "cost_options")):
            for item, at in self.each(obj, key, where):
                self.add(table, item, at, service_id=sid)
        for item, at in self.each(obj, "capacities", where):
            unit = item.get("unit")
            unit_id = self.add("unit", unit, (*at, "unit")) if isinstance(unit, dict) else ""
            self.add("service_capacity", item, at, service_id=sid, unit_id=unit_id)
        for item, at in self.each(obj, "attributes", where):
            self.attribute(item, at, sid, "service")
        for sal, at in self.each(obj, "service_at_locations", where):
            location = sal.get("location")
            loc_id = self.location(location, (*at, "location")) if isinstance(
                location, dict) else ""
            sal_id = self.add("service_at_location", sal, at, service_id=sid, location_id=loc_id)
            for table, key in (("phone", "phones"), ("schedule", "schedules"),
                               ("service_area", "service_areas")):
                for item, item_at in self.each(sal, key, at):
                    self.add(table, item, item_at, service_id=sid, service_at_location_id=sal_id)

    def location(self, obj: dict[str, Any], where: JsonPath) -> str:
        loc_id = self.add("location", obj, where)
        for table, key in (("address", "addresses"), ("phone", "phones"),
                           ("schedule", "schedules"), ("language", "languages")):
            for item, at in self.each(obj, key, where):
                self.add(table, item, at, location_id=loc_id)
        for item, at in self.each(obj, "attributes", where):
            self.attribute(item, at, loc_id, "location")
        return loc_id

    def attribute(self, obj: dict[str, Any], where: JsonPath, link_id: str, entity: str) -> None:
        term = obj.get("taxonomy_term")
        term_id = self.add("taxonomy_term", term, (*where, "taxonomy_term")) if isinstance(
            term, dict) else ""
        self.add("attribute", obj, where, link_id=link_id, link_entity=entity,
                 taxonomy_term_id=term_id)
