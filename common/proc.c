/* SPDX-License-Identifier: MIT */
/*
 * /proc readers (see proc.h). Each reads its file with one read() into a stack buffer: both
 * files are a few hundred bytes at most, and a reader called once per connection must not
 * allocate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"

/* Reads /proc/@pid/@name into @buf, NUL-terminated. Returns the length or a negative errno. */
static ssize_t read_file(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

uint64_t proc_start_time(pid_t pid)
{
	unsigned long long start = 0;
	char buf[1024], *p;

	if (pid <= 0 || read_file(pid, "stat", buf, sizeof(buf)) <= 0)
		return 0;
	/* The command name may hold spaces and parentheses: fields count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* After ')': field 3 (state) ... field 22 (starttime): skip 19 fields. */
	for (int i = 0; i < 20 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return start;
}

int proc_comm(pid_t pid, char *buf, size_t size)
{
	char comm[64];
	ssize_t n;

	if (size == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (pid <= 0)
		return -ENOENT;
	n = read_file(pid, "comm", comm, sizeof(comm));
	if (n < 0)
		return (int)n;
	comm[strcspn(comm, "\n")] = '\0';
	snprintf(buf, size, "%s", comm);
	return 0;
}
