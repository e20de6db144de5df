#!/usr/bin/python3
"""The daily orders pipeline, written the way its users write it.

Each run of a day:

1. extracts that day's orders into a pandas DataFrame (here generated; in
   real life an API or a file), typed as a client types it: integer ids,
   float amounts, a naive timestamp;
2. writes the DataFrame to a staging table with DataFrame.to_sql;
3. merges the staging table into ``orders`` with ``idempotent_upsert``:
   a re-run inserts and updates nothing, a corrected extract updates only
   the rows that changed;
4. recomputes the day's summary with pandas from what ``orders`` now holds
   and makes the day's slice of ``daily_sales`` exactly that with
   ``replace_partition``;
5. writes the customer list as the CRM shows it that day (a full snapshot)
   into ``customers_history`` with ``idempotent_history``: a version per
   change of a customer, valid from the run's time, the versions of
   customers who left closed; a re-run of a day writes nothing.

Every run is stamped with its own logical time: ``pg_idempotent.run_time``
is set, for the run's transaction, to the orchestrator's execution time, so
``loaded_at DEFAULT run_time()`` is the same on every retry of a run.

Run as a script, it catches up seven days and then runs all seven again,
the way an orchestrator's backfill does, and prints the counts of each run
and the fingerprints of both tables after each pass: the same.  The
connection comes from the usual libpq variables (PGHOST, PGPORT, PGUSER,
PGDATABASE).  Works with pandas 1.5 and SQLAlchemy 1.4 (Debian 12) and
with pandas 2 and SQLAlchemy 2 (Debian 13).
"""
import datetime
import os
import sys

import pandas as pd
import sqlalchemy as sa

FIRST_DAY = datetime.date(2025, 1, 1)
DAYS = 7
ORDERS_PER_DAY = 500
SHOPS = 12
CUSTOMERS = 10          # on the first day; one more joins every day

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id          bigint PRIMARY KEY,
    shop        int NOT NULL,
    ordered_at  timestamptz NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT run_time()
);
CREATE TABLE IF NOT EXISTS daily_sales (
    day      date NOT NULL,
    shop     int NOT NULL,
    orders   bigint NOT NULL,
    revenue  numeric(14,2) NOT NULL,
    PRIMARY KEY (day, shop)
) PARTITION BY RANGE (day);
CREATE TABLE IF NOT EXISTS customers_history (
    customer_id  bigint NOT NULL,
    name         text NOT NULL,
    tier         text NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    PRIMARY KEY (customer_id, valid_from)
);
"""


def engine_from_env():
    """An engine on the cluster the libpq variables name (a socket directory
    in PGHOST is passed as the host query parameter, as libpq takes it)."""
    url = sa.engine.URL.create(
        "postgresql+psycopg2",
        username=os.environ.get("PGUSER", "postgres"),
        database=os.environ.get("PGDATABASE", "postgres"),
        query={"host": os.environ.get("PGHOST", "/var/run/postgresql"),
               "port": os.environ.get("PGPORT", "5432")},
    )
    return sa.create_engine(url)


def setup(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_idempotent"))
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(sa.text(stmt))
        for i in range(DAYS):
            day = FIRST_DAY + datetime.timedelta(days=i)
            name = "daily_sales_%s" % day.strftime("%Y%m%d")
            conn.execute(sa.text(
                "CREATE TABLE IF NOT EXISTS %s PARTITION OF daily_sales "
                "FOR VALUES FROM ('%s') TO ('%s')"
                % (name, day, day + datetime.timedelta(days=1))))


def extract_orders(day, corrected=False):
    """The day's orders as the source system returns them: the same rows
    every time it is asked (a corrected extract changes a few amounts)."""
    base = (day - FIRST_DAY).days * ORDERS_PER_DAY
    ids = range(base + 1, base + ORDERS_PER_DAY + 1)
    frame = pd.DataFrame({
        "id": list(ids),
        "shop": [i % SHOPS for i in ids],
        "ordered_at": [datetime.datetime.combine(day, datetime.time())
                       + datetime.timedelta(seconds=(i * 97) % 86400) for i in ids],
        "amount": [round(5 + (i * 7919) % 20000 / 100.0, 2) for i in ids],
        "status": ["paid" if i % 11 else "refunded" for i in ids],
    })
    if corrected:
        frame.loc[frame["id"] % 50 == 0, "amount"] += 1.0
    return frame


def extract_customers(day):
    """The customers as the CRM lists them on a day (the same list every
    time it is asked): customer c's tier moves every 1 + c % 3 days, a new
    customer joins every day, and customer 1 leaves on the fifth day."""
    i = (day - FIRST_DAY).days
    ids = [c for c in range(1, CUSTOMERS + i + 1) if not (c == 1 and i >= 4)]
    return pd.DataFrame({
        "customer_id": ids,
        "name": ["customer %d" % c for c in ids],
        "tier": [("bronze", "silver", "gold")[(c + i // (1 + c % 3)) % 3] for c in ids],
    })


def run_day(engine, day, run_time, corrected=False):
    """One run of the pipeline for one day, in one transaction; returns the
    upsert's, the replace's and the history's counts."""
    orders = extract_orders(day, corrected)
    with engine.begin() as conn:
        # the run's logical time, for this transaction only
        conn.execute(sa.text("SELECT set_config('pg_idempotent.run_time', :t, true)"),
                     {"t": run_time.isoformat()})
        orders.to_sql("orders_staging", conn, if_exists="replace", index=False)
        upsert = conn.execute(sa.text(
            "SELECT inserted, updated, unchanged FROM idempotent_upsert('orders', 'orders_staging')")).one()

        # the day's summary, computed in pandas from what orders now holds
        held = pd.read_sql(sa.text(
            "SELECT shop, amount FROM orders "
            "WHERE ordered_at >= :d AND ordered_at < :d + 1 AND status = 'paid'"),
            conn, params={"d": day})
        summary = (held.groupby("shop", as_index=False)
                   .agg(orders=("amount", "size"), revenue=("amount", "sum")))
        summary.insert(0, "day", day)
        summary["revenue"] = summary["revenue"].astype(float).round(2)
        summary.to_sql("daily_sales_staging", conn, if_exists="replace", index=False)
        replace = conn.execute(sa.text(
            "SELECT deleted, inserted, unchanged FROM "
            "replace_partition('daily_sales', 'daily_sales_staging', 'day', CAST(:d AS date))"),
            {"d": day}).one()

        # the customer dimension, as of the run's time (as_of defaults to
        # run_time()); the list is complete, so a customer missing from it
        # has left: deletes => 'close'
        extract_customers(day).to_sql("customers_staging", conn, if_exists="replace", index=False)
        history = conn.execute(sa.text(
            "SELECT inserted, closed, corrected, unchanged FROM "
            "idempotent_history('customers_history', 'customers_staging', deletes => 'close')")).one()
    return tuple(upsert), tuple(replace), tuple(history)


def fingerprints(engine):
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "SELECT table_fingerprint('orders'), table_fingerprint('daily_sales'), "
            "table_fingerprint('customers_history')")).one()


def catch_up(engine, corrected=False, out=sys.stdout):
    """Run every day in order, each stamped with its own execution time (the
    day after, at 02:00 UTC, as a daily schedule would); returns each run's
    counts."""
    counts = []
    for i in range(DAYS):
        day = FIRST_DAY + datetime.timedelta(days=i)
        run_time = datetime.datetime.combine(day + datetime.timedelta(days=1),
                                             datetime.time(2, 0), datetime.timezone.utc)
        upsert, replace, history = run_day(engine, day, run_time, corrected)
        counts.append((day, upsert, replace, history))
        print("  %s  upsert inserted %4d updated %4d unchanged %4d   "
              "replace deleted %3d inserted %3d unchanged %3d   "
              "history inserted %2d closed %2d corrected %2d unchanged %2d"
              % ((day,) + upsert + replace + history), file=out)
    return counts


def main():
    engine = engine_from_env()
    setup(engine)
    print("== catch-up: %d days, each run stamped with its own run_time" % DAYS)
    catch_up(engine)
    first = fingerprints(engine)
    print("== the same %d days again (an orchestrator's backfill)" % DAYS)
    catch_up(engine)
    second = fingerprints(engine)
    print("fingerprints after the first pass:  orders %s  daily_sales %s  customers_history %s" % tuple(first))
    print("fingerprints after the second pass: orders %s  daily_sales %s  customers_history %s" % tuple(second))
    if first != second:
        sys.exit("running the pipeline twice changed the tables")
    print("Running the pipeline twice produced the same result.")


if __name__ == "__main__":
    main()
