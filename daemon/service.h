/* SPDX-License-Identifier: MIT */
/*
 * What the service manager sees of a running smhd: READY=1 once it listens, a STATUS= line
 * (regions served, clients, bytes in use) kept current as clients come and go and allocate,
 * STOPPING=1 at shutdown, and watchdog pings at half the interval the manager asks for.
 * Without a service manager ($NOTIFY_SOCKET unset) it does nothing at all.
 */
#ifndef DAEMON_SERVICE_H
#define DAEMON_SERVICE_H

#include <stdbool.h>
#include <uv.h>

#include "daemon/broker.h"

struct service {
	struct broker *broker; /* borrowed */
	bool enabled;
	bool ready;
	bool dirty; /* the state changed while the status was held back */
	uv_timer_t status_timer;
	uv_timer_t watchdog_timer;
	char status[128]; /* the last STATUS= sent */
};

/* Starts the watchdog pings if the service manager asks for them. */
void service_init(struct service *svc, uv_loop_t *loop, struct broker *broker);

/* Sends READY=1 with the first status. */
void service_ready(struct service *svc);

/* The clients or their allocations changed: sends the new status, at most once a second. */
void service_changed(struct service *svc);

/* Sends STOPPING=1 and closes the timers (the loop then finishes them). */
void service_stopping(struct service *svc);

#endif
