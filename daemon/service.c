/* SPDX-License-Identifier: MIT */
/*
 * Notifications to the service manager (see service.h).
 *
 * The status is rate-limited rather than sent on every request: a client allocating in a loop
 * would otherwise cost a datagram to PID 1 per allocation. A change sends at once when nothing
 * was sent in the last STATUS_INTERVAL_MS; otherwise the interval's end sends the state as it
 * is then, so the last change always shows.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/units.h"
#include "daemon/service.h"
#include "daemon/systemd.h"

#define STATUS_INTERVAL_MS 1000

static void format_status(const struct service *svc, char *buf, size_t size)
{
	const struct pool *pool = svc->broker->pool;
	uint64_t used = 0, total = 0, scrubbing, blocks;
	size_t n_served = 0;
	char used_s[32], total_s[32], scrub_s[32], more[64] = "";

	for (size_t i = 0; i < pool_n_regions(pool); i++) {
		struct buddy_stats st;

		if (pool_region(pool, i)->disabled || pool_region_stats(pool, i, &st) < 0)
			continue;
		n_served++;
		used += st.used;
		total += st.total;
	}
	/* The pool counts memory being scrubbed as allocated: no client holds it. */
	broker_scrubbing(svc->broker, UINT32_MAX, &scrubbing, &blocks);
	used -= scrubbing;
	if (scrubbing) {
		units_format_size(scrubbing, scrub_s, sizeof(scrub_s));
		snprintf(more, sizeof(more), ", %s being scrubbed", scrub_s);
	}
	units_format_size(used, used_s, sizeof(used_s));
	units_format_size(total, total_s, sizeof(total_s));
	snprintf(buf, size, "STATUS=Serving %zu region%s, %zu client%s, %s of %s in use%s",
		 n_served, n_served == 1 ? "" : "s", svc->broker->n_clients,
		 svc->broker->n_clients == 1 ? "" : "s", used_s, total_s, more);
}

/* Sends the status if it differs from the last one sent. Returns whether it sent. */
static bool send_status(struct service *svc, const char *prefix)
{
	char status[sizeof(svc->status)], msg[sizeof(svc->status) + 32];

	format_status(svc, status, sizeof(status));
	if (!prefix && strcmp(status, svc->status) == 0)
		return false;
	snprintf(msg, sizeof(msg), "%s%s", prefix ? prefix : "", status);
	systemd_notify(msg);
	memcpy(svc->status, status, sizeof(status));
	return true;
}

static void on_status_timer(uv_timer_t *timer)
{
	struct service *svc = timer->data;

	/* The interval is over: send what changed during it, and hold back for another one. */
	if (svc->dirty && send_status(svc, NULL))
		uv_timer_start(&svc->status_timer, on_status_timer, STATUS_INTERVAL_MS, 0);
	svc->dirty = false;
}

static void on_watchdog_timer(uv_timer_t *timer)
{
	systemd_notify("WATCHDOG=1");
}

void service_init(struct service *svc, uv_loop_t *loop, struct broker *broker)
{
	uint64_t usec, ms;

	*svc = (struct service){ .broker = broker, .enabled = systemd_notify_enabled() };
	uv_timer_init(loop, &svc->status_timer);
	uv_timer_init(loop, &svc->watchdog_timer);
	svc->status_timer.data = svc;
	svc->watchdog_timer.data = svc;
	if (!svc->enabled)
		return;
	/* Half the interval, as sd_watchdog_enabled(3) advises; at most every millisecond. */
	usec = systemd_watchdog_usec();
	if (usec == 0)
		return;
	ms = usec / 2000 ? usec / 2000 : 1;
	uv_timer_start(&svc->watchdog_timer, on_watchdog_timer, 0, ms);
	log_info("Watchdog: pinging the service manager every %llu ms", (unsigned long long)ms);
}

void service_ready(struct service *svc)
{
	if (!svc->enabled)
		return;
	svc->ready = true;
	send_status(svc, "READY=1\n");
	uv_timer_start(&svc->status_timer, on_status_timer, STATUS_INTERVAL_MS, 0);
}

void service_changed(struct service *svc)
{
	if (!svc->ready)
		return;
	if (uv_is_active((uv_handle_t *)&svc->status_timer)) {
		svc->dirty = true;
		return;
	}
	if (send_status(svc, NULL))
		uv_timer_start(&svc->status_timer, on_status_timer, STATUS_INTERVAL_MS, 0);
}

void service_stopping(struct service *svc)
{
	if (svc->enabled)
		systemd_notify("STOPPING=1");
	svc->ready = false;
	uv_close((uv_handle_t *)&svc->status_timer, NULL);
	uv_close((uv_handle_t *)&svc->watchdog_timer, NULL);
}
