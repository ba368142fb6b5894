/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the device-tree reader on arbitrary blob bytes, then a pool over what it found.
 *
 * dt_parse() gets the input as it is (inputs of odd length at an odd address, through its
 * copying path); inputs whose length is 3 mod 4 also go through dt_load() from a memfd, so the
 * header checks of dt_blob_read() are fuzzed too. dt.h's contract is checked on every result:
 * a failure leaves the config empty and reported at least one error; a success reported none
 * and gave regions with unique labels, sane paths, non-empty ranges that neither wrap nor
 * overlap. Every message must be one printable line. A valid config then becomes a pool (with
 * a granule large enough to keep the metadata small) that serves one block per attribute.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/dt.h"
#include "core/pool.h"
#include "tests/fuzz/fuzz.h"

/* Regions larger than this many granules get a larger granule (metadata: 9 bytes each). */
#define GRANULES_MAX (1u << 16)

struct sink {
	size_t n_errors, n_messages;
};

static int memfd = -1;

static void sink_report(void *data, enum diag_level level, const char *msg)
{
	struct sink *s = data;
	size_t len = strlen(msg);

	FUZZ_CHECK(len > 0 && len < 512);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(msg[i] >= 0x20 && msg[i] < 0x7f);
	s->n_errors += level == DIAG_ERROR;
	s->n_messages++;
}

static void check_region(const struct dt_region *r)
{
	size_t len = strnlen(r->label, DT_LABEL_MAX);

	FUZZ_CHECK(len > 0 && len < DT_LABEL_MAX);
	FUZZ_CHECK(r->path && r->path[0] == '/');
	FUZZ_CHECK(r->size > 0 && r->base + (r->size - 1) >= r->base);
	FUZZ_CHECK((unsigned)r->attr < SMH_REG_ATTR_NUM);
}

static void check_result(int ret, const struct dt_config *cfg, const struct sink *sink)
{
	/* The last message may be the count of those not shown. */
	FUZZ_CHECK(sink->n_messages <= DT_MESSAGES_MAX + 1);
	if (ret < 0) {
		FUZZ_CHECK(ret == -EBADMSG || ret == -EINVAL || ret == -ENOMEM || ret == -EFBIG);
		FUZZ_CHECK(cfg->n_regions == 0 && cfg->regions == NULL);
		FUZZ_CHECK(sink->n_errors > 0);
		return;
	}
	FUZZ_CHECK(ret == 0 && sink->n_errors == 0);
	FUZZ_CHECK(cfg->n_regions <= DT_REGIONS_MAX);
	FUZZ_CHECK(cfg->n_regions == 0 || cfg->regions != NULL);
	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct dt_region *a = &cfg->regions[i];

		check_region(a);
		for (size_t j = 0; j < i; j++) {
			const struct dt_region *b = &cfg->regions[j];

			FUZZ_CHECK(strcmp(a->label, b->label) != 0);
			FUZZ_CHECK(a->base > b->base + (b->size - 1) ||
				   b->base > a->base + (a->size - 1));
		}
	}
}

static uint64_t pick_granule(const struct dt_config *cfg)
{
	uint64_t granule = POOL_DEFAULT_GRANULE;

	for (size_t i = 0; i < cfg->n_regions; i++)
		while (granule < ((uint64_t)1 << 62) &&
		       cfg->regions[i].size / granule > GRANULES_MAX)
			granule <<= 1;
	return granule;
}

/* A pool over @cfg: regions as the device tree says, one small block of each attribute. */
static void use_config(const struct dt_config *cfg)
{
	struct sink sink = { 0 };
	struct diag diag = { sink_report, &sink };
	struct pool *pool;
	int ret = pool_create(cfg, pick_granule(cfg), NULL, &diag, &pool);

	if (ret < 0) { /* a region too small for one granule */
		FUZZ_CHECK(ret == -EINVAL && sink.n_errors > 0);
		return;
	}
	FUZZ_CHECK(pool_n_regions(pool) == cfg->n_regions);
	for (size_t i = 0; i < cfg->n_regions; i++) {
		const struct pool_region *r = pool_region(pool, i);

		FUZZ_CHECK(r->base == cfg->regions[i].base && r->size == cfg->regions[i].size);
		FUZZ_CHECK(strcmp(r->label, cfg->regions[i].label) == 0);
	}
	for (int attr = 0; attr < SMH_REG_ATTR_NUM; attr++) {
		struct pool_block blk;

		if (pool_alloc(pool, (enum smh_reg_attr)attr, 1, 0, &blk) != 0)
			continue;
		FUZZ_CHECK(pool_region(pool, blk.region)->attr == (enum smh_reg_attr)attr);
		FUZZ_CHECK(pool_free(pool, &blk) == 0);
		FUZZ_CHECK(pool_free(pool, &blk) == -EINVAL);
	}
	pool_destroy(pool);
}

static void parse(const uint8_t *data, size_t size)
{
	struct sink sink = { 0 };
	struct diag diag = { sink_report, &sink };
	struct dt_config cfg = { 0 };
	uint8_t *odd = NULL;
	int ret;

	if (size % 2) { /* an unaligned blob: dt_parse() copies it */
		odd = malloc(size + 1);
		FUZZ_CHECK(odd != NULL);
		memcpy(odd + 1, data, size);
		data = odd + 1;
	}
	ret = dt_parse(data, size, &cfg, &diag);
	free(odd);
	check_result(ret, &cfg, &sink);
	if (ret == 0 && cfg.n_regions > 0)
		use_config(&cfg);
	dt_config_finish(&cfg);
	FUZZ_CHECK(cfg.n_regions == 0 && cfg.regions == NULL);
}

static void load(const uint8_t *data, size_t size)
{
	struct sink sink = { 0 };
	struct diag diag = { sink_report, &sink };
	struct dt_config cfg = { 0 };
	char path[64];
	int ret;

	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	ret = dt_load(path, &cfg, &diag);
	check_result(ret, &cfg, &sink);
	dt_config_finish(&cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	memfd = memfd_create("fuzz-dt", MFD_CLOEXEC);
	FUZZ_CHECK(memfd >= 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse(data, size);
	if (size % 4 == 3)
		load(data, size);
	return 0;
}
