/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Random verified I/O at queue depth 32 against a reference model buffer:
 * writes, reads, FUA writes, flushes and (thin) unmaps of random sizes and
 * offsets, never two overlapping in flight; every read must equal the
 * model. Runs on a thin disk with small chunks (allocation under load)
 * and on a striped disk, then reopens the pool and verifies everything.
 */
#include "vdisk_test.h"

#define QD 32
#define MAXLEN (256u << 10)

struct slot {
	struct vlun_req req;
	struct iovec iov[2];
	uint8_t *buf;
	bool busy;
	int st;
	bool done;
};

struct ctx {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct slot s[QD];
	unsigned completed;
};

static struct ctx C;

static void slot_done(struct vlun_req *req, enum vlun_status st)
{
	struct slot *s = req->priv;
	pthread_mutex_lock(&C.lock);
	s->st = (int)st;
	s->done = true;
	C.completed++;
	pthread_cond_broadcast(&C.cond);
	pthread_mutex_unlock(&C.lock);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static bool overlaps(uint64_t off, uint64_t len, uint32_t op)
{
	for (int i = 0; i < QD; i++) {
		struct slot *s = &C.s[i];
		if (!s->busy || s->req.op == VLUN_OP_FLUSH)
			continue;
		bool both_read = op == VLUN_OP_READ && s->req.op == VLUN_OP_READ;
		if (!both_read && off < s->req.offset + s->req.length && s->req.offset < off + len)
			return true;
	}
	return false;
}

/* Retires completed slots (lock held): checks reads against the model. */
static void reap(uint8_t *model)
{
	for (int i = 0; i < QD; i++) {
		struct slot *s = &C.s[i];
		if (!s->busy || !s->done)
			continue;
		if (s->st != VLUN_OK)
			fail_msg("op %u at %llu len %llu failed with status %d", s->req.op,
				 (unsigned long long)s->req.offset, (unsigned long long)s->req.length, s->st);
		if (s->req.op == VLUN_OP_READ && memcmp(s->buf, model + s->req.offset, s->req.length) != 0) {
			uint64_t k = 0;
			while (s->buf[k] == model[s->req.offset + k])
				k++;
			fail_msg("read at %llu len %llu differs from the model at byte %llu",
				 (unsigned long long)s->req.offset, (unsigned long long)s->req.length,
				 (unsigned long long)(s->req.offset + k));
		}
		s->busy = false;
		s->done = false;
	}
}

static void run(struct vlun_vdisk *vd, uint8_t *model, uint64_t size, unsigned nops, uint64_t seed, bool thin)
{
	uint64_t x = seed;
	for (unsigned n = 0; n < nops; n++) {
		uint32_t kind = (uint32_t)(rnd(&x) % 100);
		uint32_t op = kind < 45 ? VLUN_OP_WRITE : kind < 90 ? VLUN_OP_READ : kind < 93 ? VLUN_OP_FLUSH
			      : thin ? VLUN_OP_UNMAP : VLUN_OP_WRITE_ZEROES;
		uint64_t len = 0, off = 0;
		pthread_mutex_lock(&C.lock);
		int slot = -1;
		for (;;) {
			reap(model);
			for (int i = 0; i < QD && slot < 0; i++)
				if (!C.s[i].busy)
					slot = i;
			if (slot >= 0)
				break;
			pthread_cond_wait(&C.cond, &C.lock);
		}
		if (op != VLUN_OP_FLUSH) {
			for (int tries = 0;; tries++) {
				len = (1 + rnd(&x) % (MAXLEN / 512)) * 512;
				off = (rnd(&x) % ((size - len) / 512 + 1)) * 512;
				if (!overlaps(off, len, op))
					break;
				if (tries > 50) {
					/* wait for something to finish */
					pthread_cond_wait(&C.cond, &C.lock);
					reap(model);
					tries = 0;
				}
			}
		}
		struct slot *s = &C.s[slot];
		s->busy = true;
		s->done = false;
		pthread_mutex_unlock(&C.lock);

		s->req = (struct vlun_req){ .op = op, .offset = off, .length = len, .done = slot_done, .priv = s };
		if (op == VLUN_OP_WRITE) {
			et_fill(s->buf, len, rnd(&x), 0);
			memcpy(model + off, s->buf, len);
			if (rnd(&x) % 8 == 0)
				s->req.flags = VLUN_REQ_FUA;
		} else if (op == VLUN_OP_UNMAP || op == VLUN_OP_WRITE_ZEROES) {
			memset(model + off, 0, len);
		} else if (op == VLUN_OP_READ) {
			memset(s->buf, 0xcd, len);
		}
		if (op == VLUN_OP_READ || op == VLUN_OP_WRITE) {
			/* two iovecs, split at a random sector */
			uint64_t cut = (rnd(&x) % (len / 512 + 1)) * 512;
			s->iov[0] = (struct iovec){ s->buf, cut };
			s->iov[1] = (struct iovec){ s->buf + cut, len - cut };
			s->req.iov = cut ? s->iov : s->iov + 1;
			s->req.iovcnt = cut && cut < len ? 2 : 1;
			if (cut == len) {
				s->req.iov = s->iov;
				s->req.iovcnt = 1;
			}
		}
		assert_int_equal(vlun_vdisk_submit(vd, &s->req), 0);
	}
	pthread_mutex_lock(&C.lock);
	for (;;) {
		reap(model);
		bool any = false;
		for (int i = 0; i < QD; i++)
			any |= C.s[i].busy;
		if (!any)
			break;
		pthread_cond_wait(&C.cond, &C.lock);
	}
	pthread_mutex_unlock(&C.lock);
}

static void verify_all(struct vlun_vdisk *vd, const uint8_t *model, uint64_t size)
{
	uint8_t *b = et_alloc(1 << 20);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		uint64_t l = size - off < (1 << 20) ? size - off : 1 << 20;
		assert_int_equal(et_io(vd, VLUN_OP_READ, 0, off, l, b, NULL), VLUN_OK);
		if (memcmp(b, model + off, l) != 0)
			fail_msg("after reopen: data at %llu differs from the model", (unsigned long long)off);
	}
	free(b);
}

static void random_on(uint32_t layout, uint64_t chunk, uint64_t seed)
{
	const uint64_t size = 32 << 20;
	struct et_pool tp;
	et_pool_files(&tp, 3, 24 << 20);
	et_pool_create(&tp, "rnd");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "d", layout, size, chunk, layout == VLUN_LAYOUT_STRIPED ? 3 : 0);
	if (layout == VLUN_LAYOUT_THIN)
		et_junk_members(&tp, p);
	struct vlun_vdisk *vd = et_vdisk_open(p, "d");

	uint8_t *model = calloc(1, size);
	if (layout != VLUN_LAYOUT_THIN) {
		/* Fully provisioned: start from known contents. */
		uint8_t *z = et_alloc(1 << 20);
		memset(z, 0, 1 << 20);
		for (uint64_t off = 0; off < size; off += 1 << 20)
			assert_int_equal(et_io(vd, VLUN_OP_WRITE, 0, off, 1 << 20, z, NULL), VLUN_OK);
		free(z);
	}
	memset(&C, 0, sizeof(C));
	pthread_mutex_init(&C.lock, NULL);
	pthread_cond_init(&C.cond, NULL);
	for (int i = 0; i < QD; i++)
		C.s[i].buf = et_alloc(MAXLEN);

	run(vd, model, size, 3000, seed, layout == VLUN_LAYOUT_THIN);
	assert_int_equal(et_io(vd, VLUN_OP_FLUSH, 0, 0, 0, NULL, NULL), VLUN_OK);
	verify_all(vd, model, size);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);

	p = et_pool_open(&tp);
	vd = et_vdisk_open(p, "d");
	verify_all(vd, model, size);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);

	for (int i = 0; i < QD; i++)
		free(C.s[i].buf);
	free(model);
	et_pool_cleanup(&tp);
}

static void test_random_thin(void **state) { random_on(VLUN_LAYOUT_THIN, 256 << 10, 0x1234567u); }
static void test_random_striped(void **state) { random_on(VLUN_LAYOUT_STRIPED, 64 << 10, 0x7654321u); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_thin),
		cmocka_unit_test(test_random_striped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
