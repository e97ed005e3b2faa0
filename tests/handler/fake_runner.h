/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake_runner.h — a small stand-in for tcmu-runner that dlopens
 * handler_vlun.so and drives its callouts with real data.
 *
 * It provides what the runner executable exports to handlers
 * (tcmur_register_handler, tcmur_cmd_complete, tcmur_dev_{get,set}_private,
 * tcmur_dev_update_size, tcmu_notify_*) and interposes the libtcmu device
 * getters/setters and log functions on its own struct tcmu_device (the
 * executable is linked with -rdynamic, so its definitions win over
 * libtcmu.so.2's). libtcmu's pure helpers still come from libtcmu.so.2.
 *
 * Command path (a model of tcmur_generic_handle_cmd): handle_cmd first;
 * on TCMU_STS_NOT_HANDLED, READ/WRITE(6/10/12/16), SYNCHRONIZE CACHE,
 * UNMAP and WRITE SAME with UNMAP go to the read/write/flush/unmap
 * callouts (range-checked like the runner); other opcodes answer INVALID
 * COMMAND OPERATION CODE. Asynchronous completions are awaited and each
 * tcmur_cmd must complete exactly once.
 */
#ifndef VLUN_FAKE_RUNNER_H
#define VLUN_FAKE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "libtcmu.h"
#include "tcmu-runner.h"

#define FR_SKIP 77

/* Outcome of one command as an initiator would see it. */
struct fr_result {
	int sts;         /* final TCMU_STS_* */
	bool check;      /* CHECK CONDITION */
	uint8_t key, asc, ascq;
	bool info_valid;
	uint32_t info;
	uint8_t sense[SENSE_BUFFERSIZE];
};

struct fr_cmd;

/* Loads $VLUN_BUILD_ROOT/handler/handler_vlun.so and calls handler_init.
 * Returns 0, FR_SKIP when the handler was not built, or -1. */
int fr_load(void);
struct tcmur_handler *fr_handler(void);
const char *fr_handler_path(void);

/* A device as the runner would create it (block size, LBAs, cfgstring;
 * hw_max_sectors 128, write cache off, unmap enabled as the runner sets
 * them before open). */
struct tcmu_device *fr_dev_new(const char *cfgstring, uint64_t num_lbas, uint32_t block_size);
int fr_dev_open(struct tcmu_device *dev);  /* handler->open(dev, false) */
void fr_dev_close(struct tcmu_device *dev);
void fr_dev_free(struct tcmu_device *dev);
void *fr_dev_private(struct tcmu_device *dev);
bool fr_dev_wce(struct tcmu_device *dev);
bool fr_dev_unmap_enabled(struct tcmu_device *dev);
uint32_t fr_dev_opt_unmap_gran(struct tcmu_device *dev);
uint32_t fr_dev_max_unmap_len(struct tcmu_device *dev);

/* Commands. buf is the Data-In or Data-Out buffer (NULL/0 if none); it
 * is split into iovecs of at most iov_max bytes (0: one iovec). */
struct fr_cmd *fr_cmd_new(const uint8_t *cdb, size_t cdb_len, void *buf, size_t len);
void fr_cmd_set_iov_max(struct fr_cmd *c, size_t iov_max);
void fr_cmd_start(struct tcmu_device *dev, struct fr_cmd *c);
/* Waits (up to 30 s) for the command; fills res. Returns 0 or -ETIMEDOUT. */
int fr_cmd_wait(struct fr_cmd *c, struct fr_result *res);
void fr_cmd_free(struct fr_cmd *c);
/* start + wait + free */
int fr_exec(struct tcmu_device *dev, const uint8_t *cdb, size_t cdb_len, void *buf, size_t len,
	    struct fr_result *res);

/* Turns the model of the runner's LBA range check off, so out-of-range
 * commands reach the handler's callouts (default on). */
void fr_set_runner_range_check(bool on);

/* Total of completion-protocol violations seen (double completions,
 * ASYNC_HANDLED from handle_cmd, completions of unknown commands). */
unsigned fr_violations(void);

/* How many times the handler called tcmu_notify_lock_lost. */
unsigned fr_lock_lost_calls(void);

/* CDB builders */
void fr_cdb_rw10(uint8_t cdb[10], uint8_t op, uint32_t lba, uint16_t n, uint8_t byte1);
void fr_cdb_rw16(uint8_t cdb[16], uint8_t op, uint64_t lba, uint32_t n, uint8_t byte1);
void fr_cdb_sync16(uint8_t cdb[16]);
void fr_cdb_unmap(uint8_t cdb[10], uint8_t *param, size_t *param_len, const uint64_t *lbas,
		  const uint32_t *counts, size_t n);
void fr_cdb_get_lba_status(uint8_t cdb[16], uint64_t lba, uint32_t alloc_len);
void fr_cdb_inquiry(uint8_t cdb[6], bool evpd, uint8_t page, uint16_t alloc_len);

/* Pools on files in a temporary directory, made with the libvlun API.
 * dir receives the directory (PATH_MAX bytes). layout: enum vlun_layout. */
int fr_pool_make(char *dir, unsigned nmembers, uint64_t member_bytes, const char *vdisk,
		 uint32_t layout, uint64_t vdisk_bytes, uint64_t chunk_bytes);
int fr_pool_add_vdisk(const char *dir, const char *vdisk, uint32_t layout, uint64_t vdisk_bytes,
		      uint64_t chunk_bytes);
void fr_rmrf(const char *dir);

/* Deterministic data pattern: block lba of generation gen. */
void fr_fill(uint8_t *buf, size_t len, uint64_t first_byte, uint32_t gen);
bool fr_check(const uint8_t *buf, size_t len, uint64_t first_byte, uint32_t gen);

#endif
