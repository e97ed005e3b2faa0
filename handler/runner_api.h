/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * runner_api.h — prototypes of the tcmu-runner executable's exported
 * symbols (its main-syms.txt) that handlers may call but whose headers
 * (tcmur_device.h, tcmur_cmd_handler.h) drag in runner internals. Anything
 * not listed in main-syms.txt links but fails at load: do not add it here.
 */
#ifndef VLUN_RUNNER_API_H
#define VLUN_RUNNER_API_H

#include <stdint.h>

struct tcmu_device;

void tcmur_dev_set_private(struct tcmu_device *dev, void *priv);
void *tcmur_dev_get_private(struct tcmu_device *dev);
int tcmur_dev_update_size(struct tcmu_device *dev, uint64_t new_size);
void tcmu_notify_conn_lost(struct tcmu_device *dev);
void tcmu_notify_lock_lost(struct tcmu_device *dev);
void tcmu_notify_cmd_timed_out(struct tcmu_device *dev);

#endif
