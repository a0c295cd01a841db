"""The directory's schema changes that live with the directory's code (the migrations list
in ``helpline/store/migrations.py`` refers to them by name)."""

from __future__ import annotations

# What ranking.RankIndex reads of each service (ranking.facts writes it when a service is
# indexed; services indexed before are indexed again at the next lookup), and a counter
# that moves when services or places change but not openings, so a count of free beds
# does not make the index be read again.
RANKING_SQL = """
ALTER TABLE services ADD COLUMN sort_name TEXT;      -- the name casefolded, for the order
ALTER TABLE services ADD COLUMN f_needs TEXT;        -- needs, 0x1f between them
ALTER TABLE services ADD COLUMN f_terms TEXT;        -- normalised places served, 0x1f between
ALTER TABLE services ADD COLUMN f_genders TEXT;      -- only for these genders (NULL: anyone)
ALTER TABLE services ADD COLUMN f_languages TEXT;    -- JSON list of language keys
ALTER TABLE services ADD COLUMN f_points TEXT;       -- JSON list of [lat, lon] of public places
ALTER TABLE services ADD COLUMN min_age REAL;
ALTER TABLE services ADD COLUMN max_age REAL;
ALTER TABLE services ADD COLUMN f_flags INTEGER NOT NULL DEFAULT 0;  -- free, documents, ...
CREATE INDEX services_ranked ON services(sort_name, id)
    WHERE active = 1 AND sort_name IS NOT NULL;
UPDATE services SET indexed = 0;
CREATE TABLE directory_shape (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO directory_shape (id, version) VALUES (1, 0);
CREATE TRIGGER services_insert_shape AFTER INSERT ON services
BEGIN UPDATE directory_shape SET version = version + 1; END;
CREATE TRIGGER services_update_shape AFTER UPDATE ON services
BEGIN UPDATE directory_shape SET version = version + 1; END;
CREATE TRIGGER services_delete_shape AFTER DELETE ON services
BEGIN UPDATE directory_shape SET version = version + 1; END;
CREATE TRIGGER directory_places_insert_shape AFTER INSERT ON directory_places
BEGIN UPDATE directory_shape SET version = version + 1; END;
CREATE TRIGGER directory_places_update_shape AFTER UPDATE ON directory_places
BEGIN UPDATE directory_shape SET version = version + 1; END;
CREATE TRIGGER directory_places_delete_shape AFTER DELETE ON directory_places
BEGIN UPDATE directory_shape SET version = version + 1; END;
"""
