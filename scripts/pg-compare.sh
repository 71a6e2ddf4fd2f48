#!/usr/bin/env bash
# Order placement: Mercato against PostgreSQL on this machine, at the same concurrency and for
# the same time, with the same durability (every commit synced to disk before it is answered).
#
#   scripts/pg-compare.sh [-c CLIENTS] [-d SECONDS] [-w WARMUP_SECONDS] [-p PRODUCTS] [-b MERCATO_BIN]
#
# 1. Installs PostgreSQL with apt-get when it is missing, starts a throwaway cluster in a
#    temporary directory (Unix socket only, fsync and synchronous_commit on), creates products,
#    stock, orders and order_lines, and runs pgbench with a custom script: one transaction per
#    order that reserves stock on five products with a check (each UPDATE only succeeds while
#    on_hand - reserved covers the quantity), inserts the order with a unique idempotency key
#    and its total from the products' prices, and inserts its five lines.
# 2. Stops PostgreSQL, starts `mercato demo` in a temporary directory (rate limit off) and runs
#    `mercato loadgen --mix orders`: POST /v1/orders over HTTP as the demo buyer, five lines of
#    in-stock products, a fresh Idempotency-Key each. The engine's placement checks more than
#    the SQL does (product active, manufacturer verified, MOQ and case pack, price list and
#    volume tier, credit limit) and writes the audit log and the change log in the same
#    transaction.
# 3. Prints both rates, Mercato's over PostgreSQL's, and the latencies.
#
# The two run one after the other, never at the same time, so each has the machine's cores.
set -euo pipefail

clients=16
duration=30
warmup=5
products=20000
mercato_bin=""

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while getopts "c:d:w:p:b:h" opt; do
    case "$opt" in
        c) clients="$OPTARG" ;;
        d) duration="$OPTARG" ;;
        w) warmup="$OPTARG" ;;
        p) products="$OPTARG" ;;
        b) mercato_bin="$OPTARG" ;;
        h) usage 0 ;;
        *) usage 2 ;;
    esac
done

is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_int "$clients" && ((clients >= 1 && clients <= 1024)) || { echo "-c must be 1..=1024" >&2; exit 2; }
is_int "$duration" && ((duration >= 1 && duration <= 3600)) || { echo "-d must be 1..=3600" >&2; exit 2; }
is_int "$warmup" && ((warmup <= 600)) || { echo "-w must be 0..=600" >&2; exit 2; }
is_int "$products" && ((products >= 1000)) || { echo "-p must be at least 1000" >&2; exit 2; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "$mercato_bin" ]]; then
    mercato_bin="$repo/target/release/mercato"
    if [[ ! -x "$mercato_bin" ]]; then
        echo "building mercato (release) ..." >&2
        (cd "$repo" && cargo build --release --bin mercato)
    fi
fi
[[ -x "$mercato_bin" ]] || { echo "no mercato binary at $mercato_bin" >&2; exit 2; }

# ---- PostgreSQL -------------------------------------------------------------------------------

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

work="$(mktemp -d /tmp/mercato-pg-compare.XXXXXX)"
chmod 755 "$work"
pg_pid_file=""
demo_pid=""
cleanup() {
    if [[ -n "$demo_pid" ]] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -TERM "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    if [[ -n "$pg_pid_file" && -f "$pg_pid_file" ]]; then
        as_pg "$pg/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user the package made.
if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres "$work"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

port=54329
as_pg "$pg/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
as_pg "$pg/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-k $work -p $port -c listen_addresses= -c fsync=on -c synchronous_commit=on -c max_connections=$((clients + 10)) -c shared_buffers=256MB" \
    start >/dev/null
pg_pid_file="$work/pg/postmaster.pid"
psql=("$pg/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)

as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
as_pg "${psql[@]}" -d bench >/dev/null <<SQL
CREATE TABLE products (
    id bigint PRIMARY KEY,
    manufacturer_id bigint NOT NULL,
    status smallint NOT NULL,
    case_pack integer NOT NULL,
    min_order_qty integer NOT NULL,
    base_price bigint NOT NULL
);
CREATE TABLE stock (
    product_id bigint PRIMARY KEY REFERENCES products (id),
    on_hand bigint NOT NULL,
    reserved bigint NOT NULL,
    CHECK (reserved <= on_hand)
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    retailer_id bigint NOT NULL,
    buyer_user_id bigint NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    total bigint NOT NULL,
    status smallint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_lines (
    order_id bigint NOT NULL REFERENCES orders (id),
    line_no integer NOT NULL,
    product_id bigint NOT NULL REFERENCES products (id),
    qty integer NOT NULL,
    unit_price bigint NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
INSERT INTO products
    SELECT g, 1 + g % 50, 1, 12, 24, 100 + (g * 37) % 5000 FROM generate_series(1, $products) AS g;
INSERT INTO stock SELECT id, 1000000000, 0 FROM products;
VACUUM ANALYZE;
SQL

# Five distinct products per order, one from each fifth of the catalog: ascending ids, so the
# row locks are always taken in the same order (no deadlocks between clients).
fifth=$((products / 5))
cat >"$work/order.sql" <<SQL
\set p1 random(1, $fifth)
\set p2 random($((fifth + 1)), $((2 * fifth)))
\set p3 random($((2 * fifth + 1)), $((3 * fifth)))
\set p4 random($((3 * fifth + 1)), $((4 * fifth)))
\set p5 random($((4 * fifth + 1)), $((5 * fifth)))
BEGIN;
UPDATE stock SET reserved = reserved + 24 WHERE product_id = :p1 AND on_hand - reserved >= 24;
UPDATE stock SET reserved = reserved + 24 WHERE product_id = :p2 AND on_hand - reserved >= 24;
UPDATE stock SET reserved = reserved + 24 WHERE product_id = :p3 AND on_hand - reserved >= 24;
UPDATE stock SET reserved = reserved + 24 WHERE product_id = :p4 AND on_hand - reserved >= 24;
UPDATE stock SET reserved = reserved + 24 WHERE product_id = :p5 AND on_hand - reserved >= 24;
WITH placed AS (
    INSERT INTO orders (retailer_id, buyer_user_id, idempotency_key, total, status)
    SELECT 1, 3, gen_random_uuid()::text, sum(base_price * 24), 1
    FROM products WHERE id IN (:p1, :p2, :p3, :p4, :p5) AND status = 1
    RETURNING id
)
INSERT INTO order_lines (order_id, line_no, product_id, qty, unit_price)
SELECT placed.id, line.no, p.id, 24, p.base_price
FROM placed, (VALUES (1, :p1), (2, :p2), (3, :p3), (4, :p4), (5, :p5)) AS line (no, product_id)
JOIN products p ON p.id = line.product_id;
COMMIT;
SQL

threads=$((clients < 2 ? 1 : 2))
pgbench_run() {
    as_pg "$pgbench" -n -h "$work" -p "$port" -U postgres -f "$work/order.sql" \
        -c "$clients" -j "$threads" "$@" bench
}
echo "PostgreSQL: pgbench, $clients clients, ${warmup}s warm-up, ${duration}s measured ..." >&2
if ((warmup > 0)); then
    pgbench_run -T "$warmup" >/dev/null 2>&1
fi
(cd "$work" && pgbench_run -T "$duration" -l --log-prefix="$work/pgbench" >"$work/pgbench-result.txt" 2>&1)
pg_tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench-result.txt" | head -n 1)"
pg_latency="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$work/pgbench-result.txt" | head -n 1)"
# Per-transaction log lines: client_id transaction_no time_us ...; the 99th percentile of time.
pg_p99="$(cat "$work"/pgbench.* 2>/dev/null | awk '{print $3}' | sort -n |
    awk '{v[NR] = $1} END {if (NR) {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1000} }')"
pg_orders="$(as_pg "${psql[@]}" -d bench -t -A -c "SELECT count(*) FROM orders")"
pg_version="$(as_pg "${psql[@]}" -d bench -t -A -c "SHOW server_version" | awk '{print $1}')"
as_pg "$pg/pg_ctl" -D "$work/pg" -m fast stop >/dev/null
pg_pid_file=""
[[ -n "$pg_tps" ]] || { echo "pgbench failed:" >&2; cat "$work/pgbench-result.txt" >&2; exit 1; }

# ---- Mercato ----------------------------------------------------------------------------------

echo "Mercato: mercato demo --products $products, then loadgen --mix orders ..." >&2
mkfifo "$work/demo.out"
# One credential places every order: the per-credential rate limit would cap the run.
MERCATO_HTTP_RATE_LIMIT_PER_SECOND=0 MERCATO_LOG_LEVEL=warn \
    "$mercato_bin" demo --data-dir "$work/mercato" --products "$products" --listen 127.0.0.1:0 \
    >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
url=""
exec 3<"$work/demo.out"
while IFS= read -r -t 600 line <&3; do
    case "$line" in
        "mercato listening on "*) url="${line#mercato listening on }" ;;
        "Stop with Ctrl-C.") break ;;
    esac
done
# Keep draining the demo's stdout so it never blocks on a full pipe.
cat <&3 >/dev/null &
[[ -n "$url" ]] || { echo "mercato demo did not start:" >&2; cat "$work/demo.err" >&2; exit 1; }

"$mercato_bin" loadgen --url "$url" --credentials "$work/mercato/demo-credentials.json" \
    --mix orders --concurrency "$clients" --duration "$duration" --warmup "$warmup" \
    >"$work/loadgen.out"
cat "$work/loadgen.out" >&2
read -r _ m_requests m_ok m_rate m_p50 m_p95 m_p99 m_max _ < <(grep '^order_place ' "$work/loadgen.out")
kill -TERM "$demo_pid"
wait "$demo_pid" || true
demo_pid=""

ratio="$(awk -v m="$m_rate" -v p="$pg_tps" 'BEGIN {if (p > 0) printf "%.2f", m / p; else print "n/a"}')"
echo
echo "Order placement, $clients concurrent clients, ${duration}s measured after ${warmup}s warm-up, $(nproc) cores:"
printf '  PostgreSQL %-6s pgbench (5 stock reservations + order + 5 lines, synchronous_commit=on): %10.1f tps  latency avg %s ms, p99 %s ms  (%s orders)\n' \
    "$pg_version" "$pg_tps" "$pg_latency" "$pg_p99" "$pg_orders"
printf '  Mercato           loadgen --mix orders (POST /v1/orders over HTTP):                         %10.1f orders/s  p50 %s ms, p99 %s ms, max %s ms  (%s ok of %s)\n' \
    "$m_rate" "$m_p50" "$m_p99" "$m_max" "$m_ok" "$m_requests"
echo "  Mercato / PostgreSQL: ${ratio}x"
