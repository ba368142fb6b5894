/* SPDX-License-Identifier: MIT */
/*
 * What smhd --debug-poison found (smh_get_poison()): blocks written after they were freed.
 * The reply is checked on the way in, as every inspection reply is: region indexes against the
 * hello's count, a first changed byte inside its block, as many reports as the header has room
 * for, a command name that fits.
 */
#include <errno.h>
#include <string.h>

#include "client/client-internal.h"

static int convert_report(const struct smh_client *client, const Smh__PoisonReport *in,
			  struct smh_poison_report *out)
{
	size_t n = strlen(in->comm);

	if (in->region >= client->n_regions || in->size == 0 || in->first >= in->size ||
	    in->changed == 0 || in->changed > in->size || n >= sizeof(out->comm))
		return -EPROTO;
	out->region = in->region;
	out->offset = in->offset;
	out->size = in->size;
	out->first = in->first;
	out->changed = in->changed;
	out->handle = in->handle;
	out->pid = in->pid;
	memcpy(out->comm, in->comm, n + 1);
	return 0;
}

static int read_poison(struct smh_client *client, const Smh__Response *resp, void *data)
{
	const Smh__PoisonReply *in = resp->poison;
	struct smh_poison_info *out = data;
	int ret;

	if (in->n_last > SMH_POISON_LAST || in->n_last > in->n_reports)
		return -EPROTO;
	out->enabled = in->enabled;
	out->n_reports = in->n_reports;
	out->quarantine_bytes = in->quarantine_bytes;
	for (size_t i = 0; i < in->n_last; i++) {
		ret = convert_report(client, in->last[i], &out->last[i]);
		if (ret < 0)
			return ret;
	}
	out->n_last = in->n_last;
	return 0;
}

int smh_get_poison(struct smh_client *client, struct smh_poison_info *info)
{
	Smh__PoisonRequest body = SMH__POISON_REQUEST__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	int ret;

	if (!info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	req.body_case = SMH__REQUEST__BODY_POISON;
	req.poison = &body;
	ret = client_round_trip(client, &req, SMH__RESPONSE__BODY_POISON, read_poison, info);
	if (ret < 0)
		memset(info, 0, sizeof(*info));
	return ret;
}
