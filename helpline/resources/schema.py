"""The resource directory's tables: the public directory data (services, openings,
places, the lookup indexes), stored plainly, and the services a person saved, keyed by
pseudonym with the service id encrypted."""

from __future__ import annotations

from helpline.store.schema import Migration, Part, reencrypt_fernet, statements

ENCRYPTED = (("saved_services", "service"),)

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

# PostgreSQL: statement-level triggers move the counters (once a statement, not once a
# row: only whether they moved is read), ``rowid`` is a column of services (SQLite's is
# implicit; ranking reads services by it), and names sort by code point, as in SQLite.
PG_COUNTER = ("CREATE FUNCTION {counter}_moves() RETURNS trigger LANGUAGE plpgsql AS $$ "
              "BEGIN UPDATE {counter} SET version = version + 1; RETURN NULL; END $$")
PG_TRIGGER = ("CREATE TRIGGER {table}_{counter} AFTER INSERT OR UPDATE OR DELETE ON {table} "
              "FOR EACH STATEMENT EXECUTE FUNCTION {counter}_moves()")


def _pg_counter(counter: str, tables: tuple[str, ...]) -> tuple[str, ...]:
    return (f"CREATE TABLE {counter} (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "version INTEGER NOT NULL)",
            f"INSERT INTO {counter} (id, version) VALUES (1, 0)",
            PG_COUNTER.format(counter=counter),
            *(PG_TRIGGER.format(table=t, counter=counter) for t in tables))


MIGRATIONS: list[Migration] = [
    Migration(
        1, "service directory (public data), openings, saved services",
        """
        CREATE TABLE directory_sources (
            source TEXT PRIMARY KEY,         -- where an import came from (a path or a name)
            format TEXT NOT NULL,
            imported_at REAL NOT NULL,
            services INTEGER NOT NULL,
            fictional INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE services (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL REFERENCES directory_sources(source) ON DELETE CASCADE,
            name TEXT NOT NULL,
            data TEXT NOT NULL               -- the service record as JSON (public directory data)
        );
        CREATE INDEX services_source ON services(source);

        CREATE TABLE service_capacity (
            service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
            unit TEXT NOT NULL,
            available INTEGER NOT NULL,
            maximum INTEGER,
            description TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (service_id, unit)
        );

        CREATE TABLE directory_places (
            source TEXT NOT NULL REFERENCES directory_sources(source) ON DELETE CASCADE,
            place TEXT NOT NULL,             -- a town, region or postcode of the directory
            within TEXT NOT NULL             -- a larger area it lies in
        );
        CREATE INDEX directory_places_source ON directory_places(source);

        CREATE TABLE saved_services (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid TEXT NOT NULL,
            service BLOB NOT NULL            -- encrypted service id
        );
        CREATE INDEX saved_services_pid ON saved_services(pid);
        """,
        shipped_as=2,
        pg=("CREATE TABLE directory_sources (source TEXT PRIMARY KEY, format TEXT NOT NULL, "
            "imported_at REAL NOT NULL, services INTEGER NOT NULL, fictional INTEGER NOT "
            "NULL DEFAULT 0)",
            "CREATE TABLE services (rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE, "
            "id TEXT PRIMARY KEY, source TEXT NOT NULL REFERENCES directory_sources(source) "
            'ON DELETE CASCADE, name TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL)',
            "CREATE INDEX services_source ON services(source)",
            "CREATE TABLE service_capacity (service_id TEXT NOT NULL REFERENCES services(id) "
            "ON DELETE CASCADE, unit TEXT NOT NULL, available INTEGER NOT NULL, maximum "
            "INTEGER, description TEXT, updated_at REAL NOT NULL, PRIMARY KEY (service_id, "
            "unit))",
            "CREATE TABLE directory_places (source TEXT NOT NULL REFERENCES "
            "directory_sources(source) ON DELETE CASCADE, place TEXT NOT NULL, within TEXT "
            "NOT NULL)",
            "CREATE INDEX directory_places_source ON directory_places(source)",
            "CREATE TABLE saved_services (id INTEGER PRIMARY KEY AUTOINCREMENT, pid TEXT NOT "
            "NULL, service BLOB NOT NULL)",
            "CREATE INDEX saved_services_pid ON saved_services(pid)"),
    ),
    Migration(
        2, "a counter every change to the directory moves, so lookups re-read it only then",
        """
        CREATE TABLE directory_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );
        INSERT INTO directory_version (id, version) VALUES (1, 0);
        CREATE TRIGGER services_insert_counts AFTER INSERT ON services
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER services_update_counts AFTER UPDATE ON services
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER services_delete_counts AFTER DELETE ON services
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER service_capacity_insert_counts AFTER INSERT ON service_capacity
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER service_capacity_update_counts AFTER UPDATE ON service_capacity
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER service_capacity_delete_counts AFTER DELETE ON service_capacity
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER directory_places_insert_counts AFTER INSERT ON directory_places
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER directory_places_update_counts AFTER UPDATE ON directory_places
        BEGIN UPDATE directory_version SET version = version + 1; END;
        CREATE TRIGGER directory_places_delete_counts AFTER DELETE ON directory_places
        BEGIN UPDATE directory_version SET version = version + 1; END;
        """,
        shipped_as=6,
        pg=_pg_counter("directory_version",
                       ("services", "service_capacity", "directory_places")),
    ),
    Migration(
        3, "directory search indexes: needs and places per service, active, anywhere, a point",
        """
        ALTER TABLE services ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE services ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE services ADD COLUMN anywhere INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE services ADD COLUMN latitude REAL;
        ALTER TABLE services ADD COLUMN longitude REAL;
        CREATE INDEX services_unindexed ON services(id) WHERE indexed = 0;
        CREATE INDEX services_anywhere ON services(id) WHERE anywhere = 1 AND active = 1;
        ALTER TABLE services ADD COLUMN match_data TEXT;  -- only what matching reads
        CREATE TABLE directory_needs (
            need TEXT NOT NULL,
            anywhere INTEGER NOT NULL,       -- the service works anywhere
            service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
            PRIMARY KEY (need, anywhere, service_id)
        ) WITHOUT ROWID;
        CREATE INDEX directory_needs_service ON directory_needs(service_id);
        CREATE TABLE directory_terms (
            term TEXT NOT NULL,              -- a normalised place a service serves
            service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
            PRIMARY KEY (term, service_id)
        ) WITHOUT ROWID;
        CREATE INDEX directory_terms_service ON directory_terms(service_id);
        """,
        shipped_as=8,
    ),
    Migration(4, "values still in the Fernet form written again in the AES-GCM form", "",
              reencrypt_fernet(ENCRYPTED), shipped_as=9),
    Migration(5, "directory ranking facts per service, and a counter of changes to services "
              "and places", RANKING_SQL,
              pg=(*statements(RANKING_SQL.split("CREATE TABLE directory_shape")[0].replace(
                  "sort_name TEXT;", 'sort_name TEXT COLLATE "C";')),
                  *_pg_counter("directory_shape", ("services", "directory_places")))),
    # An import of a national directory checked each of its places served (645,000 rows at
    # 300,000 services) against ``services``: about 1.8 s of its serial write, for rows it
    # built from those very services in the same transaction. The places now go with
    # their service by a trigger instead of a foreign key. (PostgreSQL keeps its key: its
    # import goes through another path.)
    Migration(
        6, "the places a service serves go with it by a trigger, not a checked foreign key",
        """
        CREATE TABLE directory_terms_new (
            term TEXT NOT NULL,              -- a normalised place a service serves
            service_id TEXT NOT NULL,        -- deleted with it (services_delete_terms)
            PRIMARY KEY (term, service_id)
        ) WITHOUT ROWID;
        INSERT INTO directory_terms_new (term, service_id)
            SELECT term, service_id FROM directory_terms;
        DROP TABLE directory_terms;
        ALTER TABLE directory_terms_new RENAME TO directory_terms;
        CREATE INDEX directory_terms_service ON directory_terms(service_id);
        CREATE TRIGGER services_delete_terms AFTER DELETE ON services
        BEGIN DELETE FROM directory_terms WHERE service_id = old.id; END;
        """,
        pg=()),
]

# Saved services go at a quick exit too: whoever picks up the phone next must not find them.
RESOURCES = Part("resources", MIGRATIONS, person_tables=("saved_services",),
                 exit_tables=("saved_services",), encrypted=ENCRYPTED)
