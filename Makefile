# pg_idempotent: PGXS build, plus the project's own entry points
#
#   make && make install   build and install into the server found by pg_config
#   make test              install what is missing, build, install, run every suite
#   make demo              the same set-up, then the example pipelines, each run twice
#   make bench             benchmarks on a throwaway cluster (prints ratios to raw SQL)
#   make fuzz              random calls (and sqlsmith) for FUZZ_SECONDS; fails on a crash
#   make test-valgrind     the pg_regress suite under valgrind memcheck
#   make test-versions     make test in a Debian chroot per release: 15, 17, 18

# pg_idempotent, and pg_idempotent_tap (pgTAP assertions, SQL only)
EXTENSION = pg_idempotent pg_idempotent_tap
EXTVERSION = 0.2.0
MODULE_big = pg_idempotent
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA = $(wildcard sql/pg_idempotent--*.sql sql/pg_idempotent_tap--*.sql)

REGRESS = $(sort $(patsubst test/regress/sql/%.sql,%,$(wildcard test/regress/sql/*.sql)))
REGRESS_OPTS = --inputdir=test/regress --load-extension=pg_idempotent
ISOLATION = $(sort $(patsubst test/isolation/specs/%.spec,%,$(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso --load-extension=pg_idempotent

PG_CPPFLAGS = -I$(srcdir)/src
# -Wextra minus unused-parameter: the server's own inline functions (list.h,
# bufpage.h) and every V1 function that ignores fcinfo would trip it.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK += $(if $(filter openssl,$(with_ssl)),-lcrypto)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
# No server headers yet (a fresh machine): only the bootstrapping targets work.
all:
	@echo "PostgreSQL server headers not found: run 'make test' or 'make demo' (they install them)," >&2
	@echo "or install your server's postgresql-server-dev-NN and run make again." >&2
	@exit 1
endif

# PGXS tracks no header dependencies: rebuild every object when one changes
$(OBJS): $(wildcard src/*.h)

.PHONY: deps test demo bench fuzz test-valgrind test-versions

deps:
	test/deps

test: deps
	$(MAKE) all
	$(MAKE) install
	test/run

demo: deps
	$(MAKE) all
	$(MAKE) install
	examples/run

bench:
	test/deps gnuplot-nox
	$(MAKE) all
	$(MAKE) install
	bench/run

fuzz:
	test/deps sqlsmith
	$(MAKE) all
	$(MAKE) install
	test/fuzz/run

test-valgrind:
	test/deps valgrind
	$(MAKE) all
	$(MAKE) install
	test/valgrind/run

test-versions:
	test/versions
