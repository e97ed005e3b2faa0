/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vlun-pr — hold a device (dm-multipath map or SCSI disk) with SCSI-3
 * persistent reservations on every path, the way lib/prmap maps open modes
 * to PR; show, release and preempt. Manual: docs/vlun-pr.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prmap.h"
#include "vlun.h"

#ifndef VLUN_VERSION
#define VLUN_VERSION "unknown"
#endif

enum {
	EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOTFOUND = 3, EXIT_INUSE = 4, EXIT_FENCED = 8,
};

static const char usage_text[] =
"Usage: vlun-pr COMMAND DEVICE [OPTIONS]\n"
"\n"
"  hold DEVICE --mode exclusive|shared|readonly (--key K | --node-id ID)\n"
"               [--access] [--type T] [--interval S] [--no-aptpl]\n"
"               [--multipathd auto|yes|no] [-- COMMAND...]\n"
"      register every path, reserve as the mode says, then run COMMAND (exit\n"
"      status: its own) or stay until SIGTERM/SIGINT; re-register returning\n"
"      paths every S seconds (default 5) and on SIGHUP; release at the end\n"
"  show DEVICE [--json]          every path: registered keys, reservation\n"
"  release DEVICE (--key K | --node-id ID)   release (if held) and unregister\n"
"  preempt DEVICE (--key K | --node-id ID) --victim V [--abort] [--mode M]\n"
"      take over from key V (PREEMPT [AND ABORT]); stays registered/holding\n"
"  clear DEVICE (--key K | --node-id ID)     drop every key and the reservation\n"
"  key --node-id ID              print the key derived from ID\n"
"  version | help\n"
"\n"
"DEVICE: /dev/mapper/NAME, /dev/dm-N or /dev/sdX. Modes: exclusive = Write\n"
"Exclusive - Registrants Only (--access: Exclusive Access - RO); shared =\n"
"Write Exclusive - All Registrants (--access: EA - AR); readonly = register\n"
"only. --type we|ea|we-ro|ea-ro|we-ar|ea-ar overrides. Exit: 0 ok, 1 failure,\n"
"2 usage, 3 not found, 4 reserved by another key, 8 fenced (our key preempted).\n";

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("vlun-pr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(". Try 'vlun-pr help'\n", stderr);
	exit(EXIT_USAGE);
}

static void logcb(enum vlun_log_level level, const char *msg, void *u)
{
	(void)u;
	/* errors reach the user once, as the command's own message */
	if ((level > VLUN_LOG_ERR && level <= VLUN_LOG_INFO) || getenv("VLUN_PR_DEBUG"))
		fprintf(stderr, "vlun-pr: [%s] %s\n", level <= VLUN_LOG_ERR ? "error" : level <= VLUN_LOG_WARN ? "warning" : "info", msg);
}

static int exit_of(int r)
{
	switch (r) {
	case 0: return EXIT_OK;
	case -EBUSY: return EXIT_INUSE;
	case -EPERM: return EXIT_FENCED;
	case -ENOENT: case -ENODEV: case -ENXIO: case -ENOTBLK: return EXIT_NOTFOUND;
	case -EINVAL: return EXIT_USAGE;
	default: return EXIT_FAIL;
	}
}

struct args {
	const char *cmd, *device;
	enum prmap_mode mode;
	bool mode_set, access, json, abort, no_aptpl;
	enum prmap_type type;
	uint64_t key, victim;
	bool key_set;
	unsigned interval;
	int mpd;                        /* -1 auto, 0 no, 1 yes */
	char **argv;                    /* after -- */
};

/* ------------------------------------------------------------ multipathd */

/* the dm name of a device ("/dev/dm-0" → "mpatha"), NULL if not dm */
static char *dm_name(const char *device)
{
	char *k = NULL, p[512], name[256];
	FILE *f;

	if (prmap_kernel_name(NULL, device, &k) < 0)
		return NULL;
	snprintf(p, sizeof(p), "/sys/block/%s/dm/name", k);
	free(k);
	f = fopen(p, "re");
	if (!f)
		return NULL;
	if (!fgets(name, sizeof(name), f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	name[strcspn(name, "\n")] = 0;
	return name[0] ? strdup(name) : NULL;
}

/* run `multipathd ARGS...`; its first output line into out. <0: could not
 * ask; otherwise multipathd's exit status */
static int mpd_cmd(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int mpd_cmd(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "re");
	if (!f)
		return -errno;
	if (out) {
		out[0] = 0;
		if (fgets(out, (int)outlen, f))
			out[strcspn(out, "\n")] = 0;
	}
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	if (st < 0 || !WIFEXITED(st))
		return -EIO;
	return WEXITSTATUS(st);
}

/* multipathd's key for the map: 1 and *ret (a key), 0 none set, <0 no
 * answer (no multipathd, no such map) */
static int mpd_getkey(const char *map, uint64_t *ret)
{
	char out[128];
	char *colon;
	int r;

	r = mpd_cmd(out, sizeof(out), "multipathd getprkey map '%s' 2>/dev/null", map);
	if (r != 0)
		return -ENOENT;
	if (strcmp(out, "none") == 0)
		return 0;
	colon = strchr(out, ':');
	if (colon)
		*colon = 0;
	return prmap_parse_key(out, ret) == 0 ? 1 : -EBADMSG;
}

struct mpd {
	char *map;
	bool set_key, set_status;
};

/* Before holding: agree on the key with multipathd. */
static int mpd_before(struct args *a, struct mpd *mp)
{
	uint64_t k = 0;
	int r;

	memset(mp, 0, sizeof(*mp));
	if (a->mpd == 0)
		return 0;
	mp->map = dm_name(a->device);
	if (!mp->map) {
		if (a->mpd == 1)
			die_usage("--multipathd yes: %s is not a device-mapper map", a->device);
		return 0;
	}
	r = mpd_getkey(mp->map, &k);
	if (r < 0) {
		if (a->mpd == 1) {
			fprintf(stderr, "vlun-pr: multipathd does not answer for map %s (is it running?)\n", mp->map);
			return -ENOENT;
		}
		free(mp->map);
		mp->map = NULL;
		return 0;
	}
	if (r == 1) {
		if (a->key_set && a->key != k) {
			fprintf(stderr, "vlun-pr: multipathd manages reservation key 0x%" PRIx64 " for map %s "
				"(multipath.conf reservation_key); hold it with --key 0x%" PRIx64 ", or change "
				"multipathd's key first (multipathd setprkey map %s key ...)\n", k, mp->map, k, mp->map);
			return -EBUSY;
		}
		if (!a->key_set)
			fprintf(stderr, "vlun-pr: using multipathd's reservation key 0x%" PRIx64 " for map %s\n", k, mp->map);
		a->key = k;
		a->key_set = true;
	} else if (!a->key_set) {
		die_usage("give --key or --node-id (multipathd has no reservation key for map %s)", mp->map);
	}
	return 0;
}

/* After registering: tell multipathd the key and that it is registered,
 * so that multipathd registers paths it reinstates — the same as
 * mpathpersist does. Both then register with the same key: no fight. */
static void mpd_after(const struct args *a, struct mpd *mp)
{
	uint64_t k;
	int r;

	if (!mp->map)
		return;
	r = mpd_getkey(mp->map, &k);
	if (r == 0) {
		if (mpd_cmd(NULL, 0, "multipathd setprkey map '%s' key 0x%" PRIx64 " >/dev/null 2>&1", mp->map, a->key) == 0)
			mp->set_key = true;
		else
			fprintf(stderr, "vlun-pr: note: multipathd does not take a key for %s (reservation_key is "
				"not 'file'); vlun-pr alone re-registers returning paths\n", mp->map);
	}
	if (mp->set_key || r == 1) {
		if (mpd_cmd(NULL, 0, "multipathd setprstatus map '%s' >/dev/null 2>&1", mp->map) == 0)
			mp->set_status = true;
	}
}

static void mpd_release(struct mpd *mp)
{
	if (!mp->map)
		return;
	if (mp->set_status)
		mpd_cmd(NULL, 0, "multipathd unsetprstatus map '%s' >/dev/null 2>&1", mp->map);
	if (mp->set_key)
		mpd_cmd(NULL, 0, "multipathd unsetprkey map '%s' >/dev/null 2>&1", mp->map);
	free(mp->map);
	mp->map = NULL;
}

/* ------------------------------------------------------------ commands */

static struct prmap_opts opts_of(const struct args *a, enum prmap_mode mode)
{
	struct prmap_opts o = {
		.mode = mode, .key = a->key, .access = a->access, .type = a->type, .no_aptpl = a->no_aptpl,
	};
	return o;
}

static int open_fail(const char *what, const char *device, int r, char *reason)
{
	fprintf(stderr, "vlun-pr: cannot %s %s: %s\n", what, device, reason ? reason : strerror(-r));
	free(reason);
	return exit_of(r);
}

static int cmd_hold(struct args *a)
{
	struct prmap_opts o;
	struct prmap *m = NULL;
	struct mpd mp;
	char *reason = NULL;
	pid_t child = -1;
	sigset_t set;
	int r, status = EXIT_OK;
	struct prmap_state *st = NULL;
	size_t nreg = 0, npaths = 0;

	if (!a->mode_set)
		die_usage("hold needs --mode exclusive|shared|readonly");
	r = mpd_before(a, &mp);
	if (r < 0)
		return exit_of(r);
	if (!a->key_set)
		die_usage("hold needs --key K or --node-id ID");
	o = opts_of(a, a->mode);
	r = prmap_open(a->device, &o, &m, &reason);
	if (r < 0) {
		mpd_release(&mp);
		return open_fail("hold", a->device, r, reason);
	}
	mpd_after(a, &mp);
	if (prmap_get_state(m, &st) == 0) {
		npaths = st->n_paths;
		for (size_t i = 0; i < st->n_paths; i++)
			nreg += st->paths[i].registered;
		prmap_state_free(st);
	}
	fprintf(stderr, "vlun-pr: holding %s %s with key 0x%" PRIx64 "; %zu of %zu paths registered\n",
		a->device, prmap_mode_name(a->mode), a->key, nreg, npaths);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (a->argv && a->argv[0]) {
		child = fork();
		if (child < 0) {
			fprintf(stderr, "vlun-pr: cannot start %s: %s\n", a->argv[0], strerror(errno));
			status = EXIT_FAIL;
			goto out;
		}
		if (child == 0) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			execvp(a->argv[0], a->argv);
			fprintf(stderr, "vlun-pr: cannot run %s: %s\n", a->argv[0], strerror(errno));
			_exit(127);
		}
	}
	for (;;) {
		struct timespec ts = { .tv_sec = a->interval };
		int sig = sigtimedwait(&set, NULL, &ts);
		bool refresh = sig < 0 || sig == SIGHUP;

		if (sig == SIGCHLD && child > 0) {
			int ws;
			if (waitpid(child, &ws, WNOHANG) == child) {
				status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
				child = -1;
				break;
			}
		}
		if (sig == SIGTERM || sig == SIGINT) {
			if (child > 0) {
				kill(child, sig);
				continue;     /* its exit ends the hold */
			}
			break;
		}
		if (refresh) {
			unsigned n = 0;
			r = prmap_refresh(m, &n);
			if (r == -EPERM) {
				fprintf(stderr, "vlun-pr: %s: key 0x%" PRIx64 " was preempted: this node is fenced%s\n",
					a->device, a->key, child > 0 ? "; stopping the command (SIGTERM)" : "");
				if (child > 0) {
					int ws;
					kill(child, SIGTERM);
					waitpid(child, &ws, 0);
					child = -1;
				}
				status = EXIT_FENCED;
				break;
			}
			if (r < 0)
				fprintf(stderr, "vlun-pr: refresh of %s: %s\n", a->device, prmap_last_error(m));
			else if (n)
				fprintf(stderr, "vlun-pr: %s: registered %u returning path(s)\n", a->device, n);
		}
	}
out:
	mpd_release(&mp);
	if (status == EXIT_FENCED) {
		prmap_free(m);
		return status;
	}
	r = prmap_release(m);
	if (r < 0) {
		fprintf(stderr, "vlun-pr: release of %s: %s\n", a->device, prmap_last_error(m));
		if (status == EXIT_OK)
			status = EXIT_FAIL;
	} else {
		fprintf(stderr, "vlun-pr: released %s (key 0x%" PRIx64 ")\n", a->device, a->key);
	}
	prmap_free(m);
	return status;
}

static void print_keys_human(const struct prmap_keys *k)
{
	if (k->n == 0) {
		fputs("-", stdout);
		return;
	}
	for (size_t i = 0; i < k->n_stored; i++)
		printf("%s0x%" PRIx64, i ? "," : "", k->keys[i]);
	if (k->n > k->n_stored)
		printf(",...(%zu)", k->n);
}

static int cmd_show(struct args *a)
{
	struct prmap_opts o = { .mode = PRMAP_NONE, .key = a->key };
	struct prmap *m = NULL;
	struct prmap_state *s = NULL;
	char *reason = NULL;
	int r, answered = 0;

	r = prmap_attach(a->device, &o, &m, &reason);
	if (r < 0)
		return open_fail("show", a->device, r, reason);
	r = prmap_get_state(m, &s);
	if (r < 0) {
		fprintf(stderr, "vlun-pr: cannot read the state of %s: %s\n", a->device, prmap_last_error(m));
		prmap_free(m);
		return exit_of(r);
	}
	for (size_t i = 0; i < s->n_paths; i++)
		answered += s->paths[i].err == 0;
	if (a->json) {
		json_object *root = json_object_new_object(), *paths = json_object_new_array();
		char kb[24];
		json_object_object_add(root, "device", json_object_new_string(s->device));
		json_object_object_add(root, "multipath", json_object_new_boolean(s->is_mpath));
		for (size_t i = 0; i < s->n_paths; i++) {
			struct prmap_path_state *p = &s->paths[i];
			json_object *jp = json_object_new_object(), *keys = json_object_new_array();
			json_object_object_add(jp, "path", json_object_new_string(p->path));
			json_object_object_add(jp, "hctl", p->hctl ? json_object_new_string(p->hctl) : NULL);
			if (p->err) {
				json_object_object_add(jp, "error", json_object_new_string(strerror(-p->err)));
			} else {
				json_object_object_add(jp, "generation", json_object_new_int64(p->keys.generation));
				for (size_t k = 0; k < p->keys.n_stored; k++) {
					snprintf(kb, sizeof(kb), "0x%" PRIx64, p->keys.keys[k]);
					json_object_array_add(keys, json_object_new_string(kb));
				}
				json_object_object_add(jp, "keys", keys);
				keys = NULL;
				if (p->resv.present) {
					json_object *jr = json_object_new_object();
					snprintf(kb, sizeof(kb), "0x%" PRIx64, p->resv.key);
					json_object_object_add(jr, "holder", json_object_new_string(kb));
					json_object_object_add(jr, "type", json_object_new_string(prmap_type_short(p->resv.type)));
					json_object_object_add(jr, "type_name", json_object_new_string(prmap_type_name(p->resv.type)));
					json_object_object_add(jp, "reservation", jr);
				} else {
					json_object_object_add(jp, "reservation", NULL);
				}
			}
			json_object_put(keys);
			json_object_array_add(paths, jp);
		}
		json_object_object_add(root, "paths", paths);
		if (answered)
			puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else if (answered) {
		printf("device: %s %s paths=%zu\n", s->device, s->is_mpath ? "multipath" : "scsi", s->n_paths);
		for (size_t i = 0; i < s->n_paths; i++) {
			struct prmap_path_state *p = &s->paths[i];
			printf("path: %s hctl=%s", p->path, p->hctl ? p->hctl : "?");
			if (p->err) {
				printf(" error=%s\n", strerror(-p->err));
				continue;
			}
			printf(" generation=%" PRIu32 " keys=", p->keys.generation);
			print_keys_human(&p->keys);
			if (p->resv.present)
				printf(" reservation=%s holder=0x%" PRIx64 " (%s)\n", prmap_type_short(p->resv.type),
				       p->resv.key, prmap_type_name(p->resv.type));
			else
				printf(" reservation=none\n");
		}
	}
	if (!answered)
		fprintf(stderr, "vlun-pr: no path of %s answers PERSISTENT RESERVE IN: %s\n", a->device, prmap_last_error(m));
	prmap_state_free(s);
	prmap_free(m);
	return answered ? EXIT_OK : EXIT_FAIL;
}

static int cmd_release(struct args *a)
{
	struct prmap_opts o = { .mode = PRMAP_NONE, .key = a->key };
	struct prmap *m = NULL;
	char *reason = NULL;
	int r;

	if (!a->key_set)
		die_usage("release needs --key K or --node-id ID");
	r = prmap_attach(a->device, &o, &m, &reason);
	if (r < 0)
		return open_fail("release", a->device, r, reason);
	r = prmap_release(m);
	if (r < 0)
		fprintf(stderr, "vlun-pr: release of %s: %s\n", a->device, prmap_last_error(m));
	else
		fprintf(stderr, "vlun-pr: released %s (key 0x%" PRIx64 ")\n", a->device, a->key);
	prmap_free(m);
	return exit_of(r);
}

static int cmd_preempt_or_clear(struct args *a, bool clear)
{
	struct prmap_opts o;
	struct prmap *m = NULL;
	char *reason = NULL;
	int r;

	if (!a->key_set)
		die_usage("%s needs --key K or --node-id ID", a->cmd);
	if (!clear && !a->victim)
		die_usage("preempt needs --victim KEY");
	o = opts_of(a, a->mode_set ? a->mode : PRMAP_EXCLUSIVE);
	if (o.mode == PRMAP_READONLY)
		die_usage("preempt takes --mode exclusive or shared");
	r = prmap_attach(a->device, &o, &m, &reason);
	if (r < 0)
		return open_fail(a->cmd, a->device, r, reason);
	r = clear ? prmap_clear(m) : prmap_preempt(m, a->victim, a->abort);
	if (r < 0)
		fprintf(stderr, "vlun-pr: %s on %s: %s\n", a->cmd, a->device, prmap_last_error(m));
	else if (clear)
		fprintf(stderr, "vlun-pr: cleared every registration and the reservation of %s\n", a->device);
	else
		fprintf(stderr, "vlun-pr: key 0x%" PRIx64 " preempted 0x%" PRIx64 "%s on %s\n", a->key, a->victim,
			a->abort ? " (and aborted its commands)" : "", a->device);
	prmap_free(m);
	return exit_of(r);
}

/* ------------------------------------------------------------ main */

static void parse_key_opt(const char *opt, const char *v, uint64_t *ret)
{
	if (prmap_parse_key(v, ret) < 0)
		die_usage("invalid %s '%s': give a non-zero 64-bit hex key such as 0x1a2b3c4d", opt, v);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "victim", required_argument, NULL, 'V' },
		{ "type", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ "multipathd", required_argument, NULL, 'M' },
		{ "access", no_argument, NULL, 'a' },
		{ "abort", no_argument, NULL, 'A' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-aptpl", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct args a = { .interval = 5, .mpd = -1 };
	int c;

	vlun_set_log(logcb, VLUN_LOG_INFO, NULL);
	if (argc < 2)
		die_usage("no command");
	a.cmd = argv[1];
	if (!strcmp(a.cmd, "help") || !strcmp(a.cmd, "--help") || !strcmp(a.cmd, "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(a.cmd, "version")) {
		puts("vlun-pr " VLUN_VERSION);
		return 0;
	}
	optind = 2;
	for (;;) {
		while ((c = getopt_long(argc, argv, "+m:k:n:V:t:i:M:aAjPh", lo, NULL)) != -1) {
			char *end;
			unsigned long v;
			switch (c) {
			case 'm':
				if (prmap_parse_mode(optarg, &a.mode) < 0)
					die_usage("invalid --mode '%s': exclusive, shared or readonly", optarg);
				a.mode_set = true;
				break;
			case 'k':
				parse_key_opt("--key", optarg, &a.key);
				a.key_set = true;
				break;
			case 'n':
				if (prmap_key_from_node_id(optarg, &a.key) < 0)
					die_usage("invalid --node-id: empty");
				a.key_set = true;
				break;
			case 'V':
				parse_key_opt("--victim", optarg, &a.victim);
				break;
			case 't':
				if (prmap_parse_type(optarg, &a.type) < 0)
					die_usage("invalid --type '%s': we, ea, we-ro, ea-ro, we-ar or ea-ar", optarg);
				break;
			case 'i':
				errno = 0;
				v = strtoul(optarg, &end, 10);
				if (errno || *end || v == 0 || v > 3600)
					die_usage("invalid --interval '%s': seconds, 1 to 3600", optarg);
				a.interval = (unsigned)v;
				break;
			case 'M':
				if (!strcmp(optarg, "auto")) a.mpd = -1;
				else if (!strcmp(optarg, "yes")) a.mpd = 1;
				else if (!strcmp(optarg, "no")) a.mpd = 0;
				else die_usage("invalid --multipathd '%s': auto, yes or no", optarg);
				break;
			case 'a': a.access = true; break;
			case 'A': a.abort = true; break;
			case 'j': a.json = true; break;
			case 'P': a.no_aptpl = true; break;
			case 'h': fputs(usage_text, stdout); return 0;
			default: die_usage("bad option");
			}
		}
		if (optind >= argc)
			break;
		/* getopt stops at "--" (consumed) or at a non-option */
		if (optind > 0 && strcmp(argv[optind - 1], "--") == 0) {
			a.argv = &argv[optind];
			break;
		}
		if (a.device)
			die_usage("unexpected argument '%s' (a command to run goes after --)", argv[optind]);
		a.device = argv[optind++];
	}

	if (!strcmp(a.cmd, "key")) {
		if (!a.key_set)
			die_usage("key needs --node-id ID");
		printf("0x%016" PRIx64 "\n", a.key);
		return 0;
	}
	if (!a.device)
		die_usage("%s needs a DEVICE", a.cmd);
	if (a.argv && strcmp(a.cmd, "hold") != 0)
		die_usage("unexpected argument '%s'", a.argv[0]);
	if (a.type != PRMAP_TYPE_NONE && a.mode_set && a.mode == PRMAP_READONLY)
		die_usage("--type does not go with --mode readonly (it reserves nothing)");
	if (!strcmp(a.cmd, "hold"))
		return cmd_hold(&a);
	if (!strcmp(a.cmd, "show"))
		return cmd_show(&a);
	if (!strcmp(a.cmd, "release"))
		return cmd_release(&a);
	if (!strcmp(a.cmd, "preempt"))
		return cmd_preempt_or_clear(&a, false);
	if (!strcmp(a.cmd, "clear"))
		return cmd_preempt_or_clear(&a, true);
	die_usage("unknown command '%s'", a.cmd);
}
