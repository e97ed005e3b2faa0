/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl.h — the control channel of a held pool.
 *
 * Only one process may commit a pool's metadata: two writers would reuse
 * sequence numbers and their copies of the truth would diverge. The process
 * that holds a pool (opened with the advisory lock: the handler inside
 * tcmu-runner; not VLUN_OPEN_RDONLY / VLUN_OPEN_NO_LOCK) therefore makes
 * the changes that are safe online itself, on request. It serves an
 * abstract Unix socket (SOCK_SEQPACKET) named
 *
 *     "\0vlun/pool/<pool-uuid>"        (uuid as vlun_uuid_format() writes it)
 *
 * from one thread of its own per pool (never an I/O thread: the fast path
 * never waits for it). The server stops on the last vlun_pool_close().
 * Abstract sockets belong to the network namespace: vlunctl must run in
 * the namespace of tcmu-runner (normally the host's).
 *
 * Peers: only uid 0 or the server's own uid (SO_PEERCRED); anyone else gets
 * "err 13 ...". One request per connection, one reply, then the server
 * closes it. A client that sends nothing within 5 s is dropped.
 *
 * Request: one message of at most VLUN_CTL_REQ_MAX bytes, an optional
 * trailing '\n', no other control characters:
 *
 *     <verb>[ <key>=<value>]...
 *
 * Words are separated by exactly one space. Each key at most once; unknown
 * keys, missing required keys and bad values are refused. A value is 1 or
 * more bytes; any byte may be written as %XX (two hex digits), and space,
 * '%' and bytes outside printable ASCII must be. Numbers are decimal,
 * without sign or unit; sizes are bytes.
 *
 *     ping
 *     stats                        I/O statistics of the members and the open
 *                                  vdisks (payload reply; format in lib/stats.c)
 *     vdisk-create name=N layout=linear|striped|thin size=B [chunk=B]
 *                  [width=W] [members=I[,I]...]
 *                  chunk: thin chunk or stripe size (0/absent = default);
 *                  members: distinct member indexes to restrict to
 *     vdisk-resize name=N size=B [force=0|1]
 *                  shrinking needs force=1 and is refused (EBUSY) while the
 *                  server has the vdisk open for I/O
 *     vdisk-delete name=N          refused (EBUSY) while the vdisk is open
 *     member-add path=P [force=0|1] P absolute; force overwrites a label
 *     mirror-add name=N [start=B] [length=B] [members=I[,I]...]
 *                  a second copy of the range (whole sectors; length 0 or
 *                  absent = to the end) on the members listed (absent: any
 *                  other); the copies start behind and the resync fills them
 *     mirror-remove name=N [start=B] [length=B] [member=I]
 *                  drops the copy on member I (absent: the alternates)
 *     mirror-split name=N new=M    the alternates of a fully in-sync
 *                                  mirrored vdisk become the new vdisk M
 *     migrate [name=N] [start=B] [length=B] [from=I] [to=I[,I]...] [rate=B]
 *                  starts a persistent migration (vlun_migrate_start): the
 *                  range of vdisk N (start/length only with name), or what
 *                  lies on member I, to the members listed (to must not
 *                  list I); rate in bytes/s, 0/absent unlimited. Payload
 *                  reply: "job id=<id>\n"
 *     resync [rate=B]              resync rate limit and an immediate pass
 *     jobs                         payload reply: one line per job,
 *                  job id=J kind=resync|migrate|rollback state=S vdisk=V total=B
 *                      done=B rate=B bps=B started=T what=W error=E
 *                  S: queued running done failed cancelled waiting;
 *                  V: vdisk id or "all"; bps: measured bytes/s; T: unix
 *                  time; W, E: text, escaped, "%00" when empty (no error)
 *     job-cancel id=J
 *     member-fault idx=I fail=0|1  fault injection (tests, drills): while
 *                                  fail=1 every I/O to member I fails
 *     snapshot-create source=S name=N [reserve=B] [chunk=B]
 *                  [policy=fail-snapshot|fail-write]
 *                  a snapshot session N of vdisk S; reserve/chunk/policy set
 *                  up (or grow/change) the source's store
 *                  (vlun_snapshot_create; absent: keep / defaults)
 *     snapshot-delete source=S name=N    refused (EBUSY) while it is open
 *     snapshot-rollback source=S name=N [wait=0|1]  restores S from N
 *                  (refused (EBUSY) while S or N is open, or while another
 *                  rollback runs). wait=1 (default): the reply comes when
 *                  it is done (a long one outlasts the client's timeout);
 *                  wait=0: the reply comes once the request is checked,
 *                  payload "job id=<id>\n", and "jobs" shows its progress
 *                  (kind=rollback) and its outcome (done, or failed with
 *                  the error)
 *     snapshot-reserve source=S [size=B] [policy=fail-snapshot|fail-write]
 *                  grows the reserve / changes the full policy (one needed)
 *     snapshot-list [source=S]     payload reply: one line per session,
 *                  snapshot id=I source=S name=N bit=B state=active|failed
 *                      flags=F created=T chunk=B saved=B shared=B
 *                      reserve_used=B reserve_total=B
 *                      policy=fail-snapshot|fail-write open=0|1 why=W
 *                  W: text, escaped, "%00" when empty
 *
 * Reply: one message of at most VLUN_CTL_REPLY_MAX bytes:
 *
 *     ok
 *     err <errno> <reason>         errno positive decimal (Linux numbers);
 *                                  the reason is one line
 *
 * or, for a verb that returns data (a query such as "stats"):
 *
 *     ok <n>\n<payload>             n = bytes of payload (decimal), at most
 *                                  VLUN_CTL_PAYLOAD_MAX; the reply is cut
 *                                  into messages of at most VLUN_CTL_MSG_MAX
 *                                  bytes that the client concatenates. The
 *                                  payload is text: '\n'-terminated lines, no
 *                                  NUL. A longer payload is refused with
 *                                  "err 7 ..." (E2BIG).
 *
 * Adding a verb that returns data: in ctl.c's execute(), check its keys like
 * the others, then build the text and set *payload to it (malloc'd; the
 * server frees it) — e.g. "return pool_stats_collect(pool, payload);".
 * serve_one() then sends "ok <n>\n" and the payload instead of "ok".
 * Clients call vlun_ctl_query(); vlun_ctl_request() also accepts such a reply
 * and drops the payload. Keep one line per object, "<kind> key=value ...",
 * with values %XX-escaped as in requests, so that clients can parse every
 * query's reply with the same few lines.
 *
 * Malformed requests get "err 22 ..." (EINVAL), unknown verbs
 * "err 95 ..." (EOPNOTSUPP), an over-long request "err 7 ..." (E2BIG).
 * The server executes a request with the library's own functions
 * (vlun_vdisk_create, vlun_vdisk_resize, vlun_vdisk_delete,
 * vlun_pool_add_member, vlun_mirror_*, vlun_migrate_start, ...), so it
 * commits through the holder's metadata state and the holder's view changes
 * at once; copies run on the holder's job thread, not in the server.
 */
#ifndef VLUN_CTL_H
#define VLUN_CTL_H

#include <stdint.h>

#include "vlun.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VLUN_CTL_REQ_MAX 4608u   /* bytes of a request (a path of PATH_MAX, escaped) */
#define VLUN_CTL_REPLY_MAX 1024u /* bytes of a reply without payload ("ok", "err ...") */
#define VLUN_CTL_PAYLOAD_MAX (256u * 1024u) /* bytes of a query's payload */
#define VLUN_CTL_MSG_MAX (32u * 1024u)      /* bytes of one message of a payload reply */
#define VLUN_CTL_TIMEOUT_MS 120000 /* client: how long a change may take */

/* Client: sends request (a line as above, without '\n') to the process
 * serving the pool and waits for its reply. Returns 0 on "ok";
 * -ECONNREFUSED when nobody serves the pool (not held, or held by a
 * process without a control channel: an older vlun, or another host);
 * -ETIMEDOUT, -ECONNRESET, -EPROTO (unreadable reply) on channel trouble;
 * otherwise the server's negative errno, with its reason in
 * *ret_reply_reason (malloc'd; set only on failure, when not NULL). */
int vlun_ctl_request(const uint8_t pool_uuid[VLUN_UUID_LEN], const char *request,
		     char **ret_reply_reason);

/* Client, for a verb that returns data (a query, e.g. "stats"): like
 * vlun_ctl_request(), and on "ok" *ret_payload is the reply's payload
 * (malloc'd text, "" when the server sent a plain "ok"). */
int vlun_ctl_query(const uint8_t pool_uuid[VLUN_UUID_LEN], const char *request, char **ret_payload,
		   char **ret_reply_reason);

/* The abstract socket address of a pool: "\0vlun/pool/<uuid>"; returns the
 * length of the name (including the leading NUL) written to buf. */
size_t vlun_ctl_socket_name(const uint8_t pool_uuid[VLUN_UUID_LEN], char *buf, size_t len);

/* Exposed for tests and the fuzzer: the checks the server makes on one
 * request of len bytes (length, NUL bytes, syntax, verb, keys and values)
 * without a pool — nothing is executed. 0 when the server would execute
 * it, else the negative errno it would answer with and the reason in why. */
int vlun_ctl_check_request(const char *req, size_t len, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
