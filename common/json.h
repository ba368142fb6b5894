/* SPDX-License-Identifier: MIT */
/*
 * A small streaming JSON writer for the programs' --json output: objects, arrays, strings
 * (escaped), unsigned and signed integers, booleans. Commas and indentation are automatic.
 * Numbers above 2^53 stay exact in the text; consumers that parse into doubles should read
 * addresses from the "0x..." string fields the programs emit beside them.
 */
#ifndef COMMON_JSON_H
#define COMMON_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *out;
	unsigned depth;
	bool has_items[JSON_MAX_DEPTH]; /* per level: something was written (a comma is due) */
	bool after_key;
	bool compact; /* no newlines nor indentation: one document per line (JSON lines) */
};

void json_init(struct json *j, FILE *out);
void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
void json_uint(struct json *j, uint64_t v);
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, bool v);
/* Ends the document with a newline. */
void json_finish(struct json *j);

#endif
