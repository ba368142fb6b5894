/* SPDX-License-Identifier: MIT */
/*
 * Refusals by kind (see refusals.h): the table from errno to kind and the kinds' names. The
 * counters themselves are the server's, counted by the request handlers.
 */
#include <errno.h>

#include "daemon/refusals.h"

const char *refusal_name(enum refusal_kind kind)
{
	static const char *const names[REFUSAL_N] = {
		[REFUSAL_NOMEM] = "nomem",
		[REFUSAL_QUOTA] = "quota",
		[REFUSAL_PERMISSION] = "permission",
		[REFUSAL_MAX_CLIENTS] = "max_clients",
		[REFUSAL_INVALID] = "invalid",
		[REFUSAL_NOT_FOUND] = "not_found",
		[REFUSAL_BUSY] = "busy",
		[REFUSAL_VERSION] = "version",
		[REFUSAL_STATE_FULL] = "state_full",
		[REFUSAL_PROTOCOL] = "protocol",
		[REFUSAL_OTHER] = "other",
	};

	return (unsigned)kind < REFUSAL_N ? names[kind] : "other";
}

enum refusal_kind refusal_kind_of(int status)
{
	switch (-status) {
	case ENOMEM:
		return REFUSAL_NOMEM;
	case EDQUOT:
		return REFUSAL_QUOTA;
	case EACCES:
		return REFUSAL_PERMISSION;
	case EMFILE:
		return REFUSAL_MAX_CLIENTS;
	case EINVAL:
	case EOPNOTSUPP:
		return REFUSAL_INVALID;
	case ENOENT:
		return REFUSAL_NOT_FOUND;
	case EBUSY:
	case EMLINK:
		return REFUSAL_BUSY;
	case EPROTONOSUPPORT:
		return REFUSAL_VERSION;
	case ENOSPC:
		return REFUSAL_STATE_FULL;
	default:
		return REFUSAL_OTHER;
	}
}
