/* SPDX-License-Identifier: MIT */
/*
 * libsmh-client's diagnostics: the log handler, error strings, and the daemon's message for
 * the last refusal.
 *
 * The library prints nothing: messages go to the handler smh_set_log_handler() set, called
 * outside any lock of ours. The last refusal is kept per thread, with the client it came from,
 * so that concurrent callers do not overwrite each other's message. Every other file of the
 * library may call this one; it calls none of them.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client-internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*log_handler)(enum smh_log_level level, const char *msg, void *data);
static void *log_data;

static _Thread_local char last_error[256];
static _Thread_local const struct smh_client *last_error_client;

void smh_set_log_handler(void (*handler)(enum smh_log_level level, const char *msg, void *data),
			 void *data)
{
	pthread_mutex_lock(&log_lock);
	log_handler = handler;
	log_data = data;
	pthread_mutex_unlock(&log_lock);
}

void client_log(enum smh_log_level level, const char *fmt, ...)
{
	void (*handler)(enum smh_log_level, const char *, void *);
	char msg[512];
	va_list ap;
	void *data;

	pthread_mutex_lock(&log_lock);
	handler = log_handler;
	data = log_data;
	pthread_mutex_unlock(&log_lock);
	if (!handler)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Outside the lock: the handler may set another handler. */
	handler(level, msg, data);
}

const char *smh_strerror(int err)
{
	const char *s;

	if (err == 0)
		return "Success";
	if (err == INT_MIN)
		return "Unknown error";
	/* strerrordesc_np() returns static strings: thread-safe, no buffer needed. */
	s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "Unknown error";
}

const char *smh_last_error(struct smh_client *client)
{
	return client && client == last_error_client ? last_error : "";
}

void client_set_last_error(const struct smh_client *client, const char *msg)
{
	snprintf(last_error, sizeof(last_error), "%s", msg ? msg : "");
	last_error_client = client;
}

void client_clear_last_error(const struct smh_client *client)
{
	if (last_error_client == client)
		client_set_last_error(NULL, "");
}
