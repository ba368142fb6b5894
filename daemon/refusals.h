/* SPDX-License-Identifier: MIT */
/*
 * Refusals by kind, counted for `smhctl metrics` (smh_refusals_total{kind="..."}): every
 * response with a negative status, and every request that broke the protocol, is counted under
 * the kind its errno says. The kinds are the ones a person acts on differently: memory ran out
 * (nomem), a quota (quota), the access policy (permission, max_clients), the client's mistake
 * (invalid, not_found, busy, version, protocol), the state file (state_full), and the rest.
 * smhd has no rate limit on requests (daemon/ratelog.h limits log lines only): no kind for it.
 */
#ifndef DAEMON_REFUSALS_H
#define DAEMON_REFUSALS_H

#include <stdint.h>

/* Append only: the names, not the numbers, go on the wire. */
enum refusal_kind {
	REFUSAL_NOMEM,       /* -ENOMEM: no region can hold it (or smhd is out of memory) */
	REFUSAL_QUOTA,       /* -EDQUOT: over a byte or buffer quota */
	REFUSAL_PERMISSION,  /* -EACCES: the uid and groups are not allowed */
	REFUSAL_MAX_CLIENTS, /* -EMFILE: max-clients are served already */
	REFUSAL_INVALID,    /* -EINVAL, -EOPNOTSUPP: a bad size, attribute, name, handle, request */
	REFUSAL_NOT_FOUND,  /* -ENOENT: no live buffer has the token */
	REFUSAL_BUSY,       /* -EBUSY, -EMLINK: a shared buffer resized, too many holds of one */
	REFUSAL_VERSION,    /* -EPROTONOSUPPORT: a protocol version smhd does not speak */
	REFUSAL_STATE_FULL, /* -ENOSPC: the state file cannot grow */
	REFUSAL_PROTOCOL,   /* the client broke the protocol and was dropped */
	REFUSAL_OTHER,
	REFUSAL_N
};

struct refusals {
	uint64_t n[REFUSAL_N];
};

/* The kind's name as the metric's label ("nomem"). */
const char *refusal_name(enum refusal_kind kind);

/* The kind of a refusal with @status (a negative errno). */
enum refusal_kind refusal_kind_of(int status);

#endif
