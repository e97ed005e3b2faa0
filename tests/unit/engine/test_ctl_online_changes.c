/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control channel (lib/ctl.h): a child process holds the pool the way
 * the handler does (locked open, a vdisk open for I/O) and serves the
 * pool's socket; the parent, which cannot open the pool itself, changes it
 * through vlun_ctl_request(): create, grow, shrink and delete of vdisks the
 * holder has not open and member-add are done by the holder; delete and
 * shrink of the open vdisk are refused with the holder's reason; malformed
 * requests and unknown verbs are refused; an over-long request is refused
 * by the server. The holder's own view has the changes at once, nobody
 * answers once it is gone, and a reopen finds the committed state.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "ctl.h"
#include "vdisk_test.h"

#define MIB (1ull << 20)

static struct et_pool tp;
static uint8_t uuid[VLUN_UUID_LEN];

/* Child: exit codes name the check that failed. */
static void holder(int ready_fd, int go_fd)
{
	struct vlun_pool *p = NULL;
	struct vlun_vdisk *vd = NULL;
	struct vlun_pool_desc *d = NULL;
	char c = 'r';

	if (vlun_pool_open(tp.paths, 2, 0, &p, NULL) < 0)
		_exit(10);
	if (vlun_vdisk_open(p, "live", 0, &vd, NULL) < 0)
		_exit(11);
	if (write(ready_fd, &c, 1) != 1)
		_exit(12);
	if (read(go_fd, &c, 1) != 1)
		_exit(13);
	/* The holder's own view already has what the parent asked for. */
	if (vlun_pool_describe(p, &d) < 0)
		_exit(14);
	const struct vlun_vdisk_desc *keep = et_find_vdisk(d, "keep");
	if (!keep || keep->layout != VLUN_LAYOUT_THIN || keep->size_sectors != (12 * MIB) >> 9)
		_exit(15);
	if (et_find_vdisk(d, "tmp") || !et_find_vdisk(d, "live") || d->nmembers != 3)
		_exit(16);
	vlun_pool_desc_free(d);
	/* and the open vdisk still works */
	uint8_t *b = et_alloc(4096);
	et_fill(b, 4096, 7, 0);
	if (et_io(vd, VLUN_OP_WRITE, 0, 0, 4096, b, NULL) != VLUN_OK)
		_exit(17);
	memset(b, 0, 4096);
	if (et_io(vd, VLUN_OP_READ, 0, 0, 4096, b, NULL) != VLUN_OK || b[100] != et_pat(7, 100))
		_exit(18);
	free(b);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	_exit(0);
}

static int req(const char *r, char **why)
{
	free(*why);
	*why = NULL;
	return vlun_ctl_request(uuid, r, why);
}

/* Sends raw bytes to the server and returns its reply (static buffer). */
static const char *raw(const void *msg, size_t len)
{
	static char buf[VLUN_CTL_REPLY_MAX + 1];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = vlun_ctl_socket_name(uuid, sa.sun_path, sizeof(sa.sun_path));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(n > 0 && fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)), 0);
	assert_int_equal(send(fd, msg, len, MSG_NOSIGNAL), (ssize_t)len);
	ssize_t got = recv(fd, buf, VLUN_CTL_REPLY_MAX, 0);
	assert_true(got > 0);
	buf[got] = '\0';
	close(fd);
	return buf;
}

static void test_online_changes(void **state)
{
	et_pool_files(&tp, 2, 16 * MIB);
	et_pool_create(&tp, "pc");
	struct vlun_pool *p = et_pool_open(&tp);
	et_vdisk_create(p, "live", VLUN_LAYOUT_LINEAR, 4 * MIB, 0, 0);
	struct vlun_pool_desc *d = NULL;
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	memcpy(uuid, d->uuid, VLUN_UUID_LEN);
	vlun_pool_desc_free(d);
	/* The parent's locked open served the socket; closed, nobody does. */
	char *why = NULL;
	assert_int_equal(req("ping", &why), 0);
	vlun_pool_close(p);
	assert_int_equal(req("ping", &why), -ECONNREFUSED);

	/* a member to add, with a space in its name (escaped as %20) */
	assert_true(asprintf(&tp.paths[2], "%s/new member", tp.dir) > 0);
	int fd = open(tp.paths[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * MIB), 0);
	close(fd);

	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(ready[0]);
		close(go[1]);
		holder(ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);

	/* The pool is held: this process cannot open it read-write. */
	assert_int_equal(vlun_pool_open(tp.paths, 2, 0, &p, NULL), -EBUSY);
	assert_int_equal(req("ping", &why), 0);

	/* Changes the holder makes. */
	assert_int_equal(req("vdisk-create name=keep layout=thin size=8388608 chunk=1048576", &why), 0);
	assert_int_equal(req("vdisk-create name=tmp layout=linear size=1048576", &why), 0);
	assert_int_equal(req("vdisk-resize name=keep size=16777216\n", &why), 0);
	assert_int_equal(req("vdisk-delete name=tmp", &why), 0);
	/* shrink of a vdisk it has not open: needs force, then done */
	assert_int_equal(req("vdisk-resize name=keep size=12582912", &why), -EPERM);
	assert_non_null(strstr(why, "force"));
	assert_int_equal(req("vdisk-resize name=keep size=12582912 force=1", &why), 0);
	char *add = NULL;
	assert_true(asprintf(&add, "member-add path=%s/new%%20member", tp.dir) > 0);
	assert_int_equal(req(add, &why), 0);
	free(add);

	/* Refused by the holder, with its reason. */
	assert_int_equal(req("vdisk-delete name=live", &why), -EBUSY);
	assert_non_null(strstr(why, "'live' is open for I/O"));
	assert_int_equal(req("vdisk-resize name=live size=1048576 force=1", &why), -EBUSY);
	assert_non_null(strstr(why, "open for I/O"));
	assert_int_equal(req("vdisk-create name=keep layout=linear size=4096", &why), -EEXIST);
	assert_non_null(strstr(why, "already has a virtual disk 'keep'"));
	assert_int_equal(req("vdisk-delete name=nosuch", &why), -ENOENT);
	assert_int_equal(req("member-add path=relative/m9", &why), -EINVAL);

	/* Malformed requests. */
	static const char *const bad[] = {
		"vdisk-create name=x layout=linear size=12abc",
		"vdisk-create name=x layout=linear size=-4096",
		"vdisk-create name=x layout=linear size=+4096",
		"vdisk-create name=x layout=linear size=99999999999999999999999",
		"vdisk-create name=x layout=linear",
		"vdisk-create name=x layout=mirror size=4096",
		"vdisk-create name=x layout=linear size=4096 width=2",
		"vdisk-create name=x layout=striped size=65536 members=0,0",
		"vdisk-create name=x layout=striped size=65536 members=0,",
		"vdisk-create name=x  layout=linear size=4096",
		" ping",
		"ping ",
		"ping extra=1",
		"ping\n\n",
		"vdisk-delete name=tmp name=tmp",
		"vdisk-delete name=a bogus=1",
		"vdisk-delete name=",
		"vdisk-delete name",
		"vdisk-delete NAME=a",
		"vdisk-delete name=a%2",
		"vdisk-delete name=a%00",
		"vdisk-resize name=keep size=16777216 force=yes",
		"vdisk-delete\tname=a",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = req(bad[i], &why);
		if (r != -EINVAL && r != -ERANGE)
			fail_msg("request '%s' gave %d (%s), expected -EINVAL", bad[i], r, why ? why : "");
		assert_non_null(why);
	}
	/* Unknown verbs. */
	assert_int_equal(req("pool-destroy", &why), -EOPNOTSUPP);
	assert_non_null(strstr(why, "unknown request 'pool-destroy'"));
	assert_int_equal(req("vdisk-snapshot name=live", &why), -EOPNOTSUPP);
	/* Bounds: the client refuses an over-long request; so does the server. */
	char *big = malloc(VLUN_CTL_REQ_MAX + 100);
	assert_non_null(big);
	memset(big, 'a', VLUN_CTL_REQ_MAX + 99);
	big[VLUN_CTL_REQ_MAX + 99] = '\0';
	assert_int_equal(req(big, &why), -E2BIG);
	assert_true(strncmp(raw(big, VLUN_CTL_REQ_MAX + 99), "err 7 ", 6) == 0);
	free(big);
	assert_string_equal(raw("ping", 4), "ok");
	assert_true(strncmp(raw("ping\0x", 6), "err 22 ", 7) == 0);

	/* Nothing of the refused requests happened; the holder sees it all. */
	assert_int_equal(write(go[1], "g", 1), 1);
	int status = 0;
	assert_int_equal(waitpid(child, &status, 0), child);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("holder's view is wrong: child status 0x%x (see the exit codes in holder())", status);
	close(ready[0]);
	close(go[1]);
	assert_int_equal(req("ping", &why), -ECONNREFUSED);

	/* Reopened: the committed state. */
	tp.n = 3;
	p = et_pool_open(&tp);
	assert_int_equal(vlun_pool_describe(p, &d), 0);
	assert_int_equal(d->nmembers, 3);
	assert_int_equal(d->nvdisks, 2);
	const struct vlun_vdisk_desc *keep = et_find_vdisk(d, "keep");
	assert_non_null(keep);
	assert_int_equal(keep->size_sectors, (12 * MIB) >> 9);
	assert_int_equal(keep->chunk_sectors, MIB >> 9);
	const struct vlun_vdisk_desc *live = et_find_vdisk(d, "live");
	assert_non_null(live);
	assert_int_equal(live->size_sectors, (4 * MIB) >> 9);
	assert_null(et_find_vdisk(d, "tmp"));
	vlun_pool_desc_free(d);
	struct vlun_vdisk *vd = et_vdisk_open(p, "live");
	et_check(vd, 0, 4096, 7);
	vlun_vdisk_close(vd);
	vlun_pool_close(p);
	free(why);
	et_pool_cleanup(&tp);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_online_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
