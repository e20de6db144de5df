#!/usr/bin/python3
"""The seed article's test of its pipeline, "running twice produces the same
result", against examples/python/pipeline.py, with unittest (no test runner
to install).  `make test` runs it on a fresh database of its throwaway
cluster (the libpq variables name it); each test starts from empty tables.
"""
import datetime
import io
import unittest

import sqlalchemy as sa

import pipeline


class PipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.engine = pipeline.engine_from_env()
        pipeline.setup(cls.engine)

    def setUp(self):
        with self.engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE orders, daily_sales, customers_history"))

    def table(self, sql):
        with self.engine.begin() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

    def test_running_twice_produces_the_same_result(self):
        first = pipeline.catch_up(self.engine, out=io.StringIO())
        after_first = pipeline.fingerprints(self.engine)
        orders = self.table("SELECT * FROM orders ORDER BY id")
        sales = self.table("SELECT * FROM daily_sales ORDER BY day, shop")
        again = pipeline.catch_up(self.engine, out=io.StringIO())
        self.assertEqual(pipeline.fingerprints(self.engine), after_first)
        self.assertEqual(self.table("SELECT * FROM orders ORDER BY id"), orders)
        self.assertEqual(self.table("SELECT * FROM daily_sales ORDER BY day, shop"), sales)
        # the first pass wrote every day; the second wrote nothing at all
        for day, upsert, replace, history in first:
            self.assertEqual(upsert, (pipeline.ORDERS_PER_DAY, 0, 0), day)
            self.assertEqual(replace[0], 0, day)
            self.assertEqual(replace[1], pipeline.SHOPS, day)
        for day, upsert, replace, history in again:
            self.assertEqual(upsert, (0, 0, pipeline.ORDERS_PER_DAY), day)
            self.assertEqual(replace, (0, 0, pipeline.SHOPS), day)
            self.assertEqual(history, (0, 0, 0, len(pipeline.extract_customers(day))), day)

    def test_each_run_keeps_its_own_run_time(self):
        pipeline.catch_up(self.engine, out=io.StringIO())
        pipeline.catch_up(self.engine, out=io.StringIO())
        rows = self.table(
            "SELECT (ordered_at AT TIME ZONE 'UTC')::date, "
            "pg_catalog.min(loaded_at), pg_catalog.max(loaded_at) FROM orders GROUP BY 1 ORDER BY 1")
        self.assertEqual(len(rows), pipeline.DAYS)
        for day, lo, hi in rows:
            expected = datetime.datetime.combine(day + datetime.timedelta(days=1),
                                                 datetime.time(2, 0), datetime.timezone.utc)
            self.assertEqual(lo, expected)
            self.assertEqual(hi, expected)

    def test_a_corrected_extract_changes_only_what_changed(self):
        pipeline.catch_up(self.engine, out=io.StringIO())
        day = pipeline.FIRST_DAY + datetime.timedelta(days=3)
        upsert, replace, _ = pipeline.run_day(
            self.engine, day,
            datetime.datetime(2025, 1, 10, 9, 0, tzinfo=datetime.timezone.utc), corrected=True)
        changed = pipeline.ORDERS_PER_DAY // 50
        self.assertEqual(upsert, (0, changed, pipeline.ORDERS_PER_DAY - changed))
        # revenue changed in the shops of the corrected orders that are paid
        self.assertEqual(replace[0], replace[1])
        self.assertGreater(replace[0], 0)
        # loaded_at says when a row was first loaded: an update leaves it
        self.assertEqual(self.table(
            "SELECT count(*) FROM orders WHERE loaded_at = '2025-01-10 09:00+00'"), [(0,)])
        # and running the correction again writes nothing
        upsert, replace, _ = pipeline.run_day(
            self.engine, day,
            datetime.datetime(2025, 1, 10, 9, 0, tzinfo=datetime.timezone.utc), corrected=True)
        self.assertEqual(upsert, (0, 0, pipeline.ORDERS_PER_DAY))
        self.assertEqual(replace, (0, 0, pipeline.SHOPS))

    def test_customer_history(self):
        """The dimension holds, for every day's run time, exactly the CRM's
        list of that day; a customer who left has no current version; and a
        second pass wrote nothing (test above)."""
        pipeline.catch_up(self.engine, out=io.StringIO())
        pipeline.catch_up(self.engine, out=io.StringIO())
        for i in range(pipeline.DAYS):
            day = pipeline.FIRST_DAY + datetime.timedelta(days=i)
            at = datetime.datetime.combine(day + datetime.timedelta(days=1),
                                           datetime.time(2, 0), datetime.timezone.utc)
            held = self.table(
                "SELECT customer_id, name, tier FROM customers_history "
                "WHERE valid_from <= '%s' AND (valid_to IS NULL OR valid_to > '%s') "
                "ORDER BY customer_id" % (at.isoformat(), at.isoformat()))
            self.assertEqual(held, [tuple(r) for r in pipeline.extract_customers(day).itertuples(index=False)], day)
        self.assertEqual(self.table(
            "SELECT count(*) FROM customers_history WHERE customer_id = 1 AND valid_to IS NULL"), [(0,)])
        self.assertEqual(self.table(
            "SELECT count(*) FROM (SELECT customer_id FROM customers_history WHERE valid_to IS NULL "
            "GROUP BY customer_id HAVING count(*) > 1) d"), [(0,)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
