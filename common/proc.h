/* SPDX-License-Identifier: MIT */
/*
 * What /proc says of a process: its start time, which tells a live process from a later one
 * that reuses its pid (the daemon's records of its clients, the keeper's watch on its
 * daemon), and its command name, for messages.
 */
#ifndef COMMON_PROC_H
#define COMMON_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The start time of process @pid in clock ticks since boot (field 22 of /proc/PID/stat), or 0
 * when it cannot be read (no such process).
 */
uint64_t proc_start_time(pid_t pid);

/*
 * The command name of process @pid (/proc/PID/comm, at most 15 characters, without the
 * newline) into @buf (@size bytes, truncated to fit). On failure @buf is the empty string.
 * Returns 0 or a negative errno: -ENOENT when no such process, -EINVAL when @size is 0, the
 * system's errno otherwise.
 */
int proc_comm(pid_t pid, char *buf, size_t size);

#endif
