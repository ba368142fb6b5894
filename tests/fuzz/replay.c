/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz targets without libFuzzer: runs every file named on the command line,
 * and every regular file of every directory named (in name order), through
 * LLVMFuzzerTestOneInput() once. The gcc builds link it to replay the seed corpora and the
 * inputs of past crashes in the `unit` suite, under ASan and valgrind. Each input sits in a
 * buffer of exactly its size, as under libFuzzer, so a read past its end is caught.
 * Exit status: 0 when at least one input ran (a check that fails aborts), 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t size = 0;
	long len;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto err;
	size = (size_t)len;
	buf = malloc(size ? size : 1);
	if (!buf || fread(buf, 1, size, f) != size)
		goto err;
	fclose(f);
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	return 0;
err:
	fprintf(stderr, "replay: %s: %s\n", path, strerror(errno ? errno : EIO));
	free(buf);
	if (f)
		fclose(f);
	return -1;
}

static int skip_dots(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Runs @path, a file or a directory of files. Returns the number of inputs run, or -1. */
static int run_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, ran = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path) < 0 ? -1 : 1;
	n = scandir(path, &names, skip_dots, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char file[4096];

		snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
		if (ran >= 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode))
			ran = run_file(file) < 0 ? -1 : ran + 1;
		free(names[i]);
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	int total = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		int n = run_path(argv[i]);

		if (n < 0)
			return 1;
		total += n;
	}
	printf("replay: %d inputs\n", total);
	return total > 0 ? 0 : 1;
}
