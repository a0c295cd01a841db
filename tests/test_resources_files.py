"""Directory files as keepers really have them, and as a hostile one could make them:
delimiters and encodings, a missing column, counts dated in the future, links and paths
out of the folder, and the size limits (each named in its message)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from helpline.privacy import Vault
from helpline.resources import Directory, hsds_read, import_directory
from helpline.store import Store
from tests.conftest import SECRET

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
HEADER = "id,name,status,description\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "helpline.db", Vault(SECRET))
    yield opened
    await opened.close()


def package(folder: Path, services: str = HEADER + "s1,Refuge,active,For women\n",
            **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "services.csv").write_text(services, encoding="utf-8")
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def lines(problems: Sequence[object], folder: Path) -> list[str]:
    return [str(p).replace(f"{folder}/", "") for p in problems]


async def test_semicolons_and_latin1_are_read_and_said_once(store: Store,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    text = "id;name;status;description\ns1;Café Refuge;active;Beds; meals\ns2;Zoë House;active;\n"
    (folder / "services.csv").write_bytes(text.replace("Beds; meals", '"Beds; meals"')
                                          .encode("cp1252"))
    result = await import_directory(store, folder, NOW)
    assert result.applied and result.problems == [] and result.services == 2
    assert result.notes == [f"{folder}/services.csv: fields are separated by ';'",
                            f"{folder}/services.csv: not UTF-8; read as cp1252 (save it as "
                            "UTF-8 to be sure of accented letters)"]
    names = {s.id: (s.name, s.description) for s in await Directory(store).services()}
    assert names == {"s1": ("Café Refuge", "Beds; meals"), "s2": ("Zoë House", None)}


async def test_a_tab_separated_export(store: Store, tmp_path: Path) -> None:
    folder = package(tmp_path / "pkg", "id\tname\tstatus\ns1\tRefuge\tactive\n")
    result = await import_directory(store, folder, NOW)
    assert result.applied and result.notes == [f"{folder}/services.csv: fields are "
                                               "separated by tab"]


async def test_a_missing_column_is_reported_once_at_the_header(store: Store,
                                                               tmp_path: Path) -> None:
    rows = "".join(f"s{i},active,x\n" for i in range(500))
    folder = package(tmp_path / "pkg", "id,status,nmae\n" + rows,
                     phones="id,service_id,numbr\np1,s1,555\np2,s2,556\n")
    result = await import_directory(store, folder, NOW, skip_bad=True)
    assert lines(result.problems, folder) == [
        "phones.csv:1: the header has no 'number' column; no row of this file was read; is "
        "'numbr' meant? rename it to 'number'",
        "services.csv:1: the header has no 'name' column; no row of this file was read; is "
        "'nmae' meant? rename it to 'name'",
    ]
    assert not result.applied and await Directory(store).count() == 0


async def test_openings_dated_in_the_future_are_refused_with_a_fix(store: Store,
                                                                   tmp_path: Path) -> None:
    folder = package(
        tmp_path / "pkg",
        units="id,name\nu1,Bed\n",
        service_capacity="id,service_id,unit_id,available,maximum,updated\n"
        "c1,s1,u1,2,5,2027-01-15T07:59:00Z\n"  # a minute ago: fine
        "c2,s1,u1,3,5,2027-01-15T09:30:00+01:00\n"  # 08:30 UTC: half an hour ahead
        "c3,s1,u1,3,5,2030-01-01T00:00:00Z\n")
    result = await import_directory(store, folder, NOW, skip_bad=True)
    fix = ("is in the future; give the date and time the count was made, with its offset "
           "(like +01:00) or in UTC (ending in Z)")
    assert lines(result.problems, folder) == [
        f"service_capacity.csv:3: updated '2027-01-15T09:30:00+01:00' {fix}",
        f"service_capacity.csv:4: updated '2030-01-01T00:00:00Z' {fix}"]
    assert result.applied and result.openings == 1
    yaml_file = tmp_path / "dir.yaml"
    yaml_file.write_text("services:\n  - id: y1\n    name: Y\n    needs: [food]\n"
                         "    openings: {available: 1, updated: 2031-05-01T10:00:00Z}\n")
    refused = await import_directory(store, yaml_file, NOW)
    assert [str(p) for p in refused.problems] == [
        f"{yaml_file}:5: openings updated 2031-05-01T10:00:00+00:00 {fix}"]


async def test_a_link_out_of_the_folder_is_refused_by_name(store: Store,
                                                           tmp_path: Path) -> None:
    outside = package(tmp_path / "elsewhere")
    folder = tmp_path / "pkg"
    folder.mkdir()
    os.symlink(outside / "services.csv", folder / "services.csv")
    os.symlink(outside / "services.csv", folder / "phones.csv")
    result = await import_directory(store, folder, NOW, skip_bad=True)
    refused = ("is a link to a file outside the datapackage folder; refused; copy the file "
               "itself into the folder")
    assert lines(result.problems, folder) == [f"phones.csv:1: {refused}",
                                              f"services.csv:1: {refused}"]
    assert not result.applied and await Directory(store).count() == 0
    # a link that stays inside the folder is fine
    (folder / "services.csv").unlink()
    (folder / "phones.csv").unlink()
    package(folder / "data")
    os.symlink(folder / "data" / "services.csv", folder / "services.csv")
    assert (await import_directory(store, folder, NOW)).applied


async def test_datapackage_paths_are_followed_and_every_refused_one_is_named(
        store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    package(folder / "data", locations="id,name\nl1,Main\n")
    package(tmp_path / "secret")
    (folder / "datapackage.json").write_text(json.dumps({"resources": [
        {"name": "services", "path": "data/services.csv"},
        {"name": "locations", "path": "data/locations.csv"},
        {"name": "phones", "path": "../secret/services.csv"},
        {"name": "addresses", "path": "/etc/hosts"},
        {"name": "schedules", "path": "https://example.org/schedules.csv"},
        {"name": "languages", "path": "data/nothing-here.csv"},
        {"name": "funding", "path": "../../../funding.csv"},  # a table not read: not named
    ]}))
    result = await import_directory(store, folder, NOW, skip_bad=True)
    assert lines(result.problems, folder) == [
        "datapackage.json:1: resource 3 ('phones') path '../secret/services.csv' leads "
        "outside the datapackage folder; refused; give a path inside the folder, and put "
        "the file there",
        "datapackage.json:1: resource 4 ('addresses') path '/etc/hosts' is not inside the "
        "datapackage folder; refused; give a path relative to the folder, and put the file "
        "there",
        "datapackage.json:1: resource 5 ('schedules') path 'https://example.org/"
        "schedules.csv' is not inside the datapackage folder; refused; give a path relative "
        "to the folder, and put the file there",
        "datapackage.json:1: resource 6 ('languages') path 'data/nothing-here.csv': no such "
        "file; fix the path, or add the file",
    ]
    assert result.applied and result.services == 1


async def test_size_limits_are_named(store: Store, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    long = "x" * (hsds_read.MAX_FIELD + 1)
    folder = package(tmp_path / "long", HEADER + f"s1,Refuge,active,{long}\n")
    result = await import_directory(store, folder, NOW)
    assert lines(result.problems, folder) == [
        "services.csv:2: a field is longer than 65,536 characters, the limit; shorten it, "
        "or check for an unclosed quote before it"]
    monkeypatch.setattr(hsds_read, "MAX_ROWS", 3)
    many = package(tmp_path / "many", HEADER + "".join(f"s{i},S,active,\n" for i in range(5)))
    result = await import_directory(store, many, NOW)
    assert lines(result.problems, many) == [
        "services.csv:5: more than 3 rows, the limit for one table; split the directory "
        "into several sources and import each with --source"]
    monkeypatch.setattr(hsds_read, "MAX_ROWS", 100)
    monkeypatch.setattr(hsds_read, "MAX_SERVICES", 2)
    result = await import_directory(store, many, NOW)
    assert lines(result.problems, many) == [
        "services.csv:4: more than 2 services, the limit for one import; split the "
        "directory into several sources and import each with --source"]
    monkeypatch.setattr(hsds_read, "MAX_FILE_BYTES", 2 * 2**20)
    big = package(tmp_path / "big", HEADER + "s1,S,active," + "y" * 60_000 + "\n" * 2**21)
    result = await import_directory(store, big, NOW)
    assert lines(result.problems, big) == [
        "services.csv:1: is larger than the limit of 2 MB for one file; split the directory "
        "into several sources and import each with --source"]
    monkeypatch.setattr(hsds_read, "MAX_JSON_BYTES", 2**20)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps([{"id": "a", "name": "b" * 2**20}]))
    result = await import_directory(store, huge, NOW)
    assert [str(p) for p in result.problems] == [
        f"{huge}:1: is larger than the limit of 1 MB for a JSON file; give the directory "
        "as an HSDS CSV datapackage instead"]
    assert await Directory(store).count() == 0
