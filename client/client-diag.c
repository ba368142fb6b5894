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

static _Thread_local char last_error[640];
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

/*
 * The errnos whose plain description misleads a user of this library, with what they mean
 * here. smh_strerror() knows only the number, so each text is right for every call that can
 * return it (include/smh/client.h lists them); smh_last_error() adds the daemon's sentence.
 */
static const struct {
	int err;
	const char *text;
} texts[] = {
	{ ENOENT, "not found: no live buffer has this token (it was freed, or never exported), or "
		  "no socket is at the path (is smhd running?)" },
	{ ECHILD, "this client belongs to the parent process (after fork): connect anew" },
	{ ESTALE, "smhd restarted without this client's buffers: stop using their mappings and "
		  "connect anew" },
	{ EPROTO, "smhd's reply broke the protocol: the client is unusable, connect anew" },
	{ ETIMEDOUT, "smhd did not answer in time ($SMH_TIMEOUT_MS, smh_set_timeout()): a client "
		     "that timed out is unusable, connect anew" },
	{ EDQUOT, "over a quota of smhd's policy (bytes or buffers per client or per uid)" },
	{ EMLINK, "this connection holds this buffer as many times as smhd keeps: free one hold "
		  "first" },
	{ ENOSPC, "smhd could not record the change in its state file (is its file system "
		  "full?)" },
	{ EPERM, "not permitted: the process at the socket runs as another user than smhd (root or "
		 "$SMH_SERVER_UID) and was sent nothing; or, from smh_map(), the kernel refused "
		 "the mapping" },
	{ EACCES, "permission denied: this user may not use smhd (the socket's permissions, or "
		  "smhd's allow-uid and allow-gid); or, from smh_map(), the kernel refused the "
		  "mapping" },
	{ EMFILE, "too many connections: smhd serves its most clients (max-clients, "
		  "max-connections-per-uid), or this process has no file descriptor left" },
	{ ECONNREFUSED, "no smhd listens at the socket (is it running?)" },
	{ EPIPE, "the connection to smhd was lost (it stopped; a call waits $SMH_RECONNECT_MS for "
		 "it to come back)" },
	{ ECONNRESET, "the connection to smhd was lost (it stopped; a call waits $SMH_RECONNECT_MS "
		      "for it to come back)" },
	{ EBUSY, "the buffer is shared: another client holds it, so it cannot move" },
};

const char *smh_strerror(int err)
{
	const char *s;

	if (err == 0)
		return "Success";
	if (err == INT_MIN)
		return "Unknown error";
	err = err < 0 ? -err : err;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].err == err)
			return texts[i].text;
	/* strerrordesc_np() returns static strings: thread-safe, no buffer needed. */
	s = strerrordesc_np(err);
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
