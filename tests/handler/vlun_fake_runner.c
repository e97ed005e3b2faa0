/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlun-fake-runner — drives handler_vlun.so without a kernel (for
 * scripts/demo --no-lab): checks the cfgstring, opens the virtual disk as
 * tcmu-runner would, writes a pattern at queue depth 32, flushes, reads it
 * back and verifies it, shows GET LBA STATUS on thin disks, unmaps one
 * region and checks it reads as zeros, and prints what happened.
 *
 *   vlun-fake-runner [--ios N] [--io-kib K] [--block-size 512|4096] POOL VDISK
 *
 * Needs VLUN_BUILD_ROOT (the build directory) to find the handler.
 * WARNING: overwrites data on the virtual disk.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_runner.h"
#include "vlun.h"

#define QD 32

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int vdisk_bytes(const char *pool, const char *vdisk, uint64_t *ret)
{
	char **paths = NULL, *why = NULL;
	size_t n = 0;
	struct vlun_pool *p = NULL;
	struct vlun_pool_desc *d = NULL;
	int r = vlun_pool_spec_expand(pool, &paths, &n, &why);

	if (r >= 0)
		r = vlun_pool_open(paths, n, VLUN_OPEN_RDONLY | VLUN_OPEN_NO_LOCK, &p, &why);
	if (r >= 0)
		r = vlun_pool_describe(p, &d);
	if (r >= 0) {
		r = -ENOENT;
		for (uint32_t i = 0; i < d->nvdisks; i++)
			if (strcmp(d->vdisks[i].name, vdisk) == 0) {
				*ret = d->vdisks[i].size_sectors * VLUN_SECTOR_SIZE;
				r = 0;
			}
	}
	if (r < 0)
		fprintf(stderr, "vlun-fake-runner: %s/%s: %s\n", pool, vdisk, why ? why : strerror(-r));
	vlun_pool_desc_free(d);
	vlun_pool_close(p);
	vlun_strv_free(paths, n);
	free(why);
	return r;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Mapped bytes according to GET LBA STATUS, walking the whole disk. */
static int mapped_bytes(struct tcmu_device *dev, uint64_t nlbas, uint32_t bs, uint64_t *ret)
{
	uint8_t cdb[16], buf[8 + 16 * 256];
	uint64_t lba = 0, mapped = 0;
	struct fr_result res;

	while (lba < nlbas) {
		uint64_t n;

		fr_cdb_get_lba_status(cdb, lba, sizeof(buf));
		if (fr_exec(dev, cdb, 16, buf, sizeof(buf), &res) < 0 || res.sts != TCMU_STS_OK)
			return -EIO;
		n = (be(buf, 4) - 4) / 16;
		if (n == 0)
			return -EIO;
		for (uint64_t i = 0; i < n; i++) {
			const uint8_t *d = &buf[8 + 16 * i];

			if ((d[12] & 0xf) == 0)
				mapped += be(d + 8, 4) * bs;
			lba = be(d, 8) + be(d + 8, 4);
		}
	}
	*ret = mapped;
	return 0;
}

static int run_batch(struct tcmu_device *dev, uint8_t op, uint8_t **bufs, const uint64_t *offs,
		     int n, size_t io, uint32_t bs)
{
	struct fr_cmd *cmds[QD];
	struct fr_result res;
	int bad = 0;

	for (int i = 0; i < n; i++) {
		uint8_t cdb[16];

		fr_cdb_rw16(cdb, op, offs[i] / bs, (uint32_t)(io / bs), 0);
		cmds[i] = fr_cmd_new(cdb, 16, bufs[i], io);
		fr_cmd_start(dev, cmds[i]);
	}
	for (int i = 0; i < n; i++) {
		if (fr_cmd_wait(cmds[i], &res) < 0 || res.sts != TCMU_STS_OK) {
			fprintf(stderr, "  %s at %" PRIu64 " failed: status %d sense %x/%02x/%02x\n",
				op == 0x8a ? "WRITE(16)" : "READ(16)", offs[i], res.sts, res.key, res.asc, res.ascq);
			bad++;
		}
		fr_cmd_free(cmds[i]);
	}
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ios", required_argument, NULL, 'n' },
		{ "io-kib", required_argument, NULL, 'k' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned ios = 256, bs = 512, kib = 256;
	char cfg[PATH_MAX + 300], *reason = NULL;
	uint64_t size = 0, nlbas, mapped = 0, stride;
	struct tcmu_device *dev;
	struct fr_result res;
	bool thin;
	int c, r, errors = 0;
	double t0, tw, tr;

	while ((c = getopt_long(argc, argv, "n:k:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': ios = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'k': kib = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': bs = (unsigned)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: %s [--ios N] [--io-kib K] [--block-size 512|4096] POOL VDISK\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 2 || ios == 0 || kib == 0 || (kib * 1024) % bs) {
		fprintf(stderr, "usage: %s [--ios N] [--io-kib K] [--block-size 512|4096] POOL VDISK\n", argv[0]);
		return 2;
	}
	r = fr_load();
	if (r != 0) {
		fprintf(stderr, "vlun-fake-runner: cannot load %s (set VLUN_BUILD_ROOT to the build directory)\n",
			fr_handler_path());
		return 1;
	}
	snprintf(cfg, sizeof(cfg), "vlun/%s/%s", argv[optind], argv[optind + 1]);
	printf("handler   %s (subtype %s)\n", fr_handler_path(), fr_handler()->subtype);
	if (!fr_handler()->check_config(cfg, &reason)) {
		printf("check_config %s: REFUSED: %s\n", cfg, reason ? reason : "?");
		free(reason);
		return 1;
	}
	printf("check_config %s: ok\n", cfg);
	if (vdisk_bytes(argv[optind], argv[optind + 1], &size) < 0)
		return 1;
	nlbas = size / bs;
	dev = fr_dev_new(cfg, nlbas, bs);
	if (!dev || fr_dev_open(dev) != 0) {
		printf("open: FAILED (see the log above)\n");
		return 1;
	}
	thin = fr_dev_unmap_enabled(dev);
	printf("open      %" PRIu64 " bytes, %u-byte blocks, %s, write cache %s\n", size, bs,
	       thin ? "thin (UNMAP, GET LBA STATUS)" : "fully provisioned", fr_dev_wce(dev) ? "on" : "off");
	if (thin && mapped_bytes(dev, nlbas, bs, &mapped) == 0)
		printf("lbastatus %" PRIu64 " bytes mapped before the test\n", mapped);

	{
		size_t io = (size_t)kib * 1024;
		uint8_t **bufs = calloc(QD, sizeof(*bufs));
		uint64_t *offs = calloc(ios, sizeof(*offs));
		uint32_t gen = (uint32_t)time(NULL);

		if (size < io) {
			printf("virtual disk too small for %u KiB I/O\n", kib);
			return 1;
		}
		stride = (size / ios) - (size / ios) % io;
		for (unsigned i = 0; i < ios; i++)
			offs[i] = stride ? (uint64_t)i * stride : ((uint64_t)i * io) % (size - size % io);
		for (int i = 0; i < QD; i++)
			bufs[i] = malloc(io);

		t0 = now();
		for (unsigned i = 0; i < ios; i += QD) {
			int n = ios - i < QD ? (int)(ios - i) : QD;

			for (int j = 0; j < n; j++)
				fr_fill(bufs[j], io, offs[i + j], gen);
			errors += run_batch(dev, 0x8a, bufs, &offs[i], n, io, bs);
		}
		{
			uint8_t cdb[16];

			fr_cdb_sync16(cdb);
			if (fr_exec(dev, cdb, 16, NULL, 0, &res) < 0 || res.sts != TCMU_STS_OK) {
				printf("SYNCHRONIZE CACHE failed\n");
				errors++;
			}
		}
		tw = now() - t0;
		printf("write     %u x %u KiB at QD%d + SYNCHRONIZE CACHE: %.1f MiB in %.2f s\n", ios, kib, QD,
		       (double)ios * io / 1048576.0, tw);

		t0 = now();
		for (unsigned i = 0; i < ios; i += QD) {
			int n = ios - i < QD ? (int)(ios - i) : QD;

			errors += run_batch(dev, 0x88, bufs, &offs[i], n, io, bs);
			for (int j = 0; j < n; j++)
				if (!fr_check(bufs[j], io, offs[i + j], gen)) {
					printf("  MISMATCH in the %u KiB at offset %" PRIu64 "\n", kib, offs[i + j]);
					errors++;
				}
		}
		tr = now() - t0;
		printf("read      %u x %u KiB at QD%d, verified: %s (%.2f s)\n", ios, kib, QD,
		       errors ? "ERRORS" : "all data matches", tr);

		if (thin && mapped_bytes(dev, nlbas, bs, &mapped) == 0)
			printf("lbastatus %" PRIu64 " bytes mapped after the writes\n", mapped);
		if (thin) {
			uint8_t cdb[16], param[32];
			size_t plen;
			uint64_t chunk = (uint64_t)fr_dev_opt_unmap_gran(dev) * bs;
			uint64_t l = (offs[0] + chunk - 1) / chunk * chunk;

			if (chunk && l + chunk <= size) {
				uint64_t lba = l / bs;
				uint32_t cnt = (uint32_t)(chunk / bs);
				uint8_t *z = malloc(chunk);

				fr_cdb_unmap(cdb, param, &plen, &lba, &cnt, 1);
				if (fr_exec(dev, cdb, 10, param, plen, &res) < 0 || res.sts != TCMU_STS_OK) {
					printf("UNMAP failed\n");
					errors++;
				}
				fr_cdb_rw16(cdb, 0x88, lba, cnt, 0);
				if (fr_exec(dev, cdb, 16, z, chunk, &res) < 0 || res.sts != TCMU_STS_OK) {
					errors++;
				} else {
					for (uint64_t i = 0; i < chunk; i++)
						if (z[i]) {
							printf("  unmapped range does not read as zeros\n");
							errors++;
							break;
						}
				}
				free(z);
				if (mapped_bytes(dev, nlbas, bs, &mapped) == 0)
					printf("unmap     %" PRIu64 " bytes at %" PRIu64 ": reads zeros; %" PRIu64 " bytes mapped now\n",
					       chunk, l, mapped);
			}
		}
		for (int i = 0; i < QD; i++)
			free(bufs[i]);
		free(bufs);
		free(offs);
	}
	fr_dev_close(dev);
	fr_dev_free(dev);
	if (fr_violations()) {
		printf("completion protocol violations: %u\n", fr_violations());
		errors++;
	}
	printf("result    %s\n", errors ? "FAILED" : "OK");
	return errors ? 1 : 0;
}
