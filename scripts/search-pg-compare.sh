#!/usr/bin/env bash
# Product search: Mercato's Tantivy index against PostgreSQL full-text search on this machine,
# same products, same query mix, one after the other.
#
#   scripts/search-pg-compare.sh [-n PRODUCTS] [-q QUERIES_PER_KIND] [-d SECONDS] [-c CLIENTS]
#
# 1. Runs `cargo run --release -p mercato-index --example search_bench` with -n products and
#    -q queries of each kind (one-word, two-word, misspelt, filtered, faceted); it prints the
#    Tantivy figures and writes the products as CSV and the query mix as TSV.
# 2. Installs PostgreSQL with apt-get when it is missing, starts a throwaway cluster in a
#    temporary directory (Unix socket only), loads the CSV into a table with a stored tsvector
#    (name weight A; SKU, manufacturer, category path, attributes B; description C), builds a
#    GIN index on it (and one on the category ids), and runs the same mix with pgbench: each
#    transaction looks up one query of its kind (\gset) and runs it with websearch_to_tsquery
#    ('simple' configuration: no stemming, like the index) and ts_rank, the top 20 by rank and
#    the total count; the filtered kind adds category, price range and stock; the faceted kind
#    adds counts per category, per manufacturer and per price band. PostgreSQL has no typo
#    tolerance: a misspelt query finds (almost) nothing there.
# 3. Prints both sides' latencies and queries/s and the ratio, at 1 client and at -c clients.
set -euo pipefail

products=1000000
per_kind=500
duration=30
clients=2

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while getopts "n:q:d:c:h" opt; do
    case "$opt" in
        n) products="$OPTARG" ;;
        q) per_kind="$OPTARG" ;;
        d) duration="$OPTARG" ;;
        c) clients="$OPTARG" ;;
        h) usage 0 ;;
        *) usage 2 ;;
    esac
done

is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_int "$products" && ((products >= 1000)) || { echo "-n must be at least 1000" >&2; exit 2; }
is_int "$per_kind" && ((per_kind >= 1 && per_kind <= 100000)) || { echo "-q must be 1..=100000" >&2; exit 2; }
is_int "$duration" && ((duration >= 1 && duration <= 3600)) || { echo "-d must be 1..=3600" >&2; exit 2; }
is_int "$clients" && ((clients >= 1 && clients <= 64)) || { echo "-c must be 1..=64" >&2; exit 2; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/mercato-search-pg.XXXXXX)"
chmod 755 "$work"
pg=""
pg_started=""
cleanup() {
    if [[ -n "$pg_started" ]]; then
        as_pg "$pg/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- Mercato (Tantivy) -------------------------------------------------------------------------

echo "Mercato: search_bench --docs $products --queries $per_kind --threads $clients ..." >&2
(cd "$repo" && cargo build --release -p mercato-index --example search_bench >&2)
"$repo/target/release/examples/search_bench" --docs "$products" --queries "$per_kind" \
    --threads "$clients" --dir "$work/index" --csv "$work/products.csv" \
    --queries-out "$work/queries.tsv" | tee "$work/tantivy.txt" >&2
rm -rf "$work/index"
# "| whole mix | p50 | p95 | p99 | max | queries/s | |" and "throughput: ... = N queries/s".
read -r t_p50 t_p95 t_p99 t_qps1 < <(awk -F'|' '/^\| whole mix/ {gsub(/ /, ""); print $3, $4, $5, $7}' "$work/tantivy.txt")
t_qpsn="$(sed -n 's/^throughput: .* = \([0-9.]*\) queries\/s/\1/p' "$work/tantivy.txt")"

# ---- PostgreSQL ---------------------------------------------------------------------------------

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [[ -z "$(pg_bin_dir)" ]]; then
    echo "installing PostgreSQL ..." >&2
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "PostgreSQL is missing and installing it needs root (apt-get install postgresql)" >&2
        exit 2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi
pg="$(pg_bin_dir)"
pgbench="$pg/pgbench"
[[ -x "$pgbench" ]] || pgbench="$(command -v pgbench)"

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user the package made.
if [[ "$(id -u)" -eq 0 ]]; then
    chown -R postgres "$work"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

port=54331
as_pg "$pg/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
as_pg "$pg/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-k $work -p $port -c listen_addresses= -c shared_buffers=2GB -c work_mem=64MB -c maintenance_work_mem=1GB -c effective_cache_size=8GB -c jit=off -c max_wal_size=8GB" \
    start >/dev/null
pg_started=1
psql=("$pg/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)

echo "PostgreSQL: loading $products products, tsvector + GIN ..." >&2
as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
load_started=$(date +%s.%N)
as_pg "${psql[@]}" -d bench >/dev/null <<SQL
CREATE TABLE products (
    id bigint PRIMARY KEY,
    tenant bigint NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    manufacturer_id bigint NOT NULL,
    manufacturer_name text NOT NULL,
    category_path text NOT NULL,
    category_ids bigint[] NOT NULL,
    attributes text NOT NULL,
    price bigint NOT NULL,
    in_stock boolean NOT NULL,
    created_ms bigint NOT NULL,
    units_sold bigint NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A') ||
        setweight(to_tsvector('simple', sku || ' ' || manufacturer_name || ' ' || category_path || ' ' || attributes), 'B') ||
        setweight(to_tsvector('simple', description), 'C')
    ) STORED
);
COPY products (id, tenant, sku, name, description, manufacturer_id, manufacturer_name,
               category_path, category_ids, attributes, price, in_stock, created_ms, units_sold)
    FROM '$work/products.csv' WITH (FORMAT csv);
CREATE INDEX products_tsv ON products USING gin (tsv);
CREATE INDEX products_categories ON products USING gin (category_ids);
CREATE TABLE bench_queries (
    kind text NOT NULL,
    n integer NOT NULL,
    text text NOT NULL,
    category bigint,
    price_min bigint,
    price_max bigint,
    PRIMARY KEY (kind, n)
);
COPY bench_queries FROM '$work/queries.tsv';
VACUUM ANALYZE;
SQL
load_seconds="$(awk -v a="$load_started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
pg_size_mib="$(as_pg "${psql[@]}" -d bench -t -A -c "SELECT pg_total_relation_size('products') / 1048576")"
pg_version="$(as_pg "${psql[@]}" -d bench -t -A -c "SHOW server_version" | awk '{print $1}')"

lookup() {
    echo "\\set n random(1, $per_kind)"
    echo "SELECT text AS qtext, coalesce(category, 0) AS qcat, coalesce(price_min, 0) AS qmin, coalesce(price_max, 0) AS qmax FROM bench_queries WHERE kind = '$1' AND n = :n \\gset"
}
search_sql="SELECT id, ts_rank(tsv, q) AS rank, count(*) OVER () AS total FROM products, websearch_to_tsquery('simple', ':qtext') q WHERE tenant = 1 AND tsv @@ q"
for kind in one-word two-word misspelt; do
    { lookup "$kind"; echo "$search_sql ORDER BY rank DESC LIMIT 20;"; } >"$work/$kind.sql"
done
{
    lookup filtered
    echo "$search_sql AND category_ids @> ARRAY[:qcat]::bigint[] AND price BETWEEN :qmin AND :qmax AND in_stock ORDER BY rank DESC LIMIT 20;"
} >"$work/filtered.sql"
{
    lookup faceted
    cat <<'SQL'
WITH m AS MATERIALIZED (SELECT id, manufacturer_id, category_ids, price, ts_rank(tsv, q) AS rank FROM products, websearch_to_tsquery('simple', ':qtext') q WHERE tenant = 1 AND tsv @@ q) SELECT 'hit', id, rank FROM (SELECT id, rank FROM m ORDER BY rank DESC LIMIT 20) h UNION ALL SELECT 'total', count(*), 0 FROM m UNION ALL SELECT 'category', c, count(*) FROM m, unnest(m.category_ids) AS c GROUP BY c UNION ALL SELECT 'manufacturer', manufacturer_id, count(*) FROM m GROUP BY manufacturer_id UNION ALL SELECT 'band', width_bucket(price, ARRAY[1000, 5000, 20000, 100000]::bigint[]), count(*) FROM m GROUP BY 2;
SQL
} >"$work/faceted.sql"
chown -R postgres "$work" 2>/dev/null || true

# pgbench substitutes :name anywhere in a command, inside quotes too: check that the query
# text really reaches PostgreSQL before measuring anything.
{
    lookup one-word | sed 's/random(1, [0-9]*)/random(1, 1)/'
    echo "INSERT INTO substitution_check SELECT ':qtext';"
} >"$work/check.sql"
as_pg "${psql[@]}" -d bench -c "CREATE TABLE substitution_check (text text)" >/dev/null
as_pg "$pgbench" -n -h "$work" -p "$port" -U postgres -f "$work/check.sql" -t 1 bench >/dev/null 2>&1
checked="$(as_pg "${psql[@]}" -d bench -t -A -c "SELECT count(*) FROM substitution_check c JOIN bench_queries b ON b.kind = 'one-word' AND b.n = 1 AND b.text = c.text")"
[[ "$checked" == 1 ]] || { echo "pgbench did not substitute the query text" >&2; exit 1; }
sample_hits="$(as_pg "${psql[@]}" -d bench -t -A -c "SELECT count(*) FROM products p, bench_queries b WHERE b.kind = 'one-word' AND b.n = 1 AND p.tenant = 1 AND p.tsv @@ websearch_to_tsquery('simple', b.text)")"

kinds=(one-word two-word misspelt filtered faceted)
scripts=()
for kind in "${kinds[@]}"; do scripts+=(-f "$work/$kind.sql@1"); done
pgbench_run() {
    local n="$1"
    shift
    as_pg "$pgbench" -n -h "$work" -p "$port" -U postgres "${scripts[@]}" -c "$n" -j "$n" "$@" bench
}

echo "PostgreSQL: warm-up, then pgbench ${duration}s at 1 client and at $clients clients ..." >&2
pgbench_run 1 -T 10 >/dev/null 2>&1
(cd "$work" && pgbench_run 1 -T "$duration" -l --log-prefix="$work/one" >"$work/pg-1.txt" 2>&1)
(cd "$work" && pgbench_run "$clients" -T "$duration" >"$work/pg-n.txt" 2>&1)
pg_qps1="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pg-1.txt" | head -n 1)"
pg_qpsn="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pg-n.txt" | head -n 1)"
[[ -n "$pg_qps1" && -n "$pg_qpsn" ]] || { echo "pgbench failed:" >&2; cat "$work/pg-1.txt" "$work/pg-n.txt" >&2; exit 1; }

# Log lines: client_id transaction_no time_us script_no epoch epoch_us.
percentiles() { # script number or "all" -> "p50 p95 p99" in ms
    cat "$work"/one.* | awk -v s="$1" '(s == "all" || $4 == s) {print $3}' | sort -n |
        awk '{v[NR] = $1} END {if (!NR) {print "- - -"; exit} split("50 95 99", p, " ");
             for (k = 1; k <= 3; k++) {i = int(NR * p[k] / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR;
             printf "%.2f%s", v[i] / 1000, (k < 3 ? " " : "\n")}}'
}

echo
echo "Product search, $products products, $per_kind queries per kind, $(nproc) cores:"
echo
echo "| kind | Tantivy p50 / p95 / p99 ms | PostgreSQL $pg_version p50 / p95 / p99 ms |"
echo "| --- | --- | --- |"
for i in "${!kinds[@]}"; do
    kind="${kinds[$i]}"
    read -r a b c < <(awk -F'|' -v k="$kind" '$2 ~ "^ "k" $" {gsub(/ /, ""); print $3, $4, $5}' "$work/tantivy.txt")
    read -r x y z < <(percentiles "$i")
    echo "| $kind | $a / $b / $c | $x / $y / $z |"
done
read -r x y z < <(percentiles all)
echo "| whole mix | $t_p50 / $t_p95 / $t_p99 | $x / $y / $z |"
echo
ratio1="$(awk -v m="$t_qps1" -v p="$pg_qps1" 'BEGIN {if (p > 0) printf "%.1f", m / p; else print "n/a"}')"
ration="$(awk -v m="$t_qpsn" -v p="$pg_qpsn" 'BEGIN {if (p > 0) printf "%.1f", m / p; else print "n/a"}')"
echo "| queries/s (whole mix) | Tantivy | PostgreSQL | Tantivy / PostgreSQL |"
echo "| --- | ---: | ---: | ---: |"
echo "| 1 client | $t_qps1 | $pg_qps1 | ${ratio1}x |"
echo "| $clients clients | $t_qpsn | $pg_qpsn | ${ration}x |"
echo
echo "PostgreSQL load (COPY + generated tsvector + 2 GIN indexes + VACUUM ANALYZE): ${load_seconds} s; table + indexes ${pg_size_mib} MiB"
echo "(PostgreSQL latencies include the one-row lookup of the query text by primary key; the first one-word query matches $sample_hits products there.)"
