#!/usr/bin/env bash
# Start Debian's PostgreSQL (installed by .ci/run) and make the test role; prints the admin URL
# the tests use (BRENDER_TEST_PG) on its last line.
set -euo pipefail
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
pg_ctlcluster "$version" "$cluster" start 2>/dev/null || true
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 && break
  sleep 0.2
done
su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'brender') THEN
    CREATE ROLE brender LOGIN SUPERUSER PASSWORD 'brender';
  END IF;
END $$;
SQL
echo "postgresql://brender:brender@127.0.0.1:5432/postgres"
