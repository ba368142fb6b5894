#!/bin/bash
# The booted image's test (tests/board/run-systemd-test): run at boot by smh-systemd-test.service
# on Debian bookworm with systemd as PID 1 and smh's .debs installed. Each check prints
# "[ OK ]" or "[FAIL]" and what it saw; the last line is "SMH SYSTEMD TEST: PASS" (or FAIL),
# then it powers the machine off.
#
# The host installed the packages as a user would (dpkg -i: the group smh, /run/smh, the socket
# enabled), a drop-in /etc/systemd/system/smhd.service.d/board.conf that gives smhd the board's
# device tree (x86 has none: --dtb, the regions reserved with memmap=) and a shorter watchdog,
# and /usr/local/bin/smh-systemd-client (tests/board/systemd-client.c).
set -u
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8
client=/usr/local/bin/smh-systemd-client
dropin=/etc/systemd/system/smhd.service.d/board.conf
n_failed=0

ok() { echo "[ OK ] $*"; }
fail() {
	echo "[FAIL] $*"
	n_failed=$((n_failed + 1))
}
# check "WHAT" COMMAND...: OK when COMMAND succeeds.
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
show() { # prints a command's output, indented
	echo "  \$ $*"
	"$@" 2>&1 | sed 's/^/    /'
}
main_pid() { systemctl show -p MainPID --value smhd.service; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
	local n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
active() { [ "$(systemctl is-active "$1")" = active ]; }

# ---- a client that holds buffers across restarts (coprocess: commands in, answers out)
start_client() { # USER ATTR...
	local user=$1
	shift
	coproc CLIENT { runuser -u "$user" -- env SMH_RECONNECT_MS=120000 \
		SMH_TIMEOUT_MS=120000 "$client" "$@" 2>&1; }
	read -r -t 120 line <&"${CLIENT[0]}" || line="(no answer)"
	echo "  client: $line"
	[ "${line#READY}" != "$line" ]
}
ask_client() { # COMMAND: prints the answer, succeeds on "OK"
	echo "$1" >&"${CLIENT[1]}"
	read -r -t 180 line <&"${CLIENT[0]}" || line="(no answer)"
	echo "  client: $line"
	[ "${line#OK}" != "$line" ]
}
stop_client() {
	echo quit >&"${CLIENT[1]}"
	read -r -t 60 line <&"${CLIENT[0]}"
	wait "$CLIENT_PID" 2>/dev/null
}

echo "==== smh under systemd: $(uname -r), systemd $(systemctl --version | head -n 1 | cut -d' ' -f2)"
show dpkg-query -W smhd smhctl libsmh-client0
show cat "$dropin"

# ---- 1. the socket listens, the service does not run
check "smhd.socket is enabled and listening on /run/smh/smhd.sock" \
	eval '[ "$(systemctl is-enabled smhd.socket)" = enabled ] && active smhd.socket &&
	[ -S /run/smh/smhd.sock ]'
check "smhd.service is not running before the first client" \
	eval '! active smhd.service && [ "$(main_pid)" = 0 ]'
show stat -c '%A %U:%G %n' /run/smh/smhd.sock

# ---- 2. the first client starts it by activation
out=$(smhctl regions 2>&1)
echo "$out" | sed 's/^/    /'
check "the first 'smhctl regions' is answered (it names heap-cacheable and heap-noncacheable)" \
	eval 'echo "$out" | grep -q heap-cacheable && echo "$out" | grep -q heap-noncacheable'
check "smhd.service was started by socket activation" \
	eval 'active smhd.service && journalctl -b -u smhd --no-pager -o cat |
	grep -q "Listening on /run/smh/smhd.sock (socket passed by the service manager)"'

# ---- 3. Type=notify: readiness and STATUS=
status=$(systemctl status smhd.service --no-pager -l 2>&1)
echo "  \$ systemctl status smhd"
echo "$status" | sed 's/^/    /'
check "Type=notify, and the service became active only through READY=1" \
	eval '[ "$(systemctl show -p Type --value smhd)" = notify ] &&
	[ "$(systemctl show -p ActiveState --value smhd)" = active ]'
check "systemctl status shows smhd's STATUS= line (Status: \"Serving ...\")" \
	eval 'echo "$status" | grep -q "Status: \"Serving 2 regions"'
check "the watchdog is armed (WatchdogUSec from the drop-in, smhd pings)" \
	eval '[ "$(systemctl show -p WatchdogUSec --value smhd)" = 5s ] &&
	journalctl -b -u smhd -o cat | grep -q "Watchdog: pinging the service manager"'

# ---- 4. the hardening in force
sec=$(systemd-analyze security --no-pager smhd.service 2>&1)
echo "  \$ systemd-analyze security smhd.service (the lines that matter)"
echo "$sec" | grep -E '^(✓|✗)? *(SystemCallFilter|PrivateNetwork|CapabilityBoundingSet|NoNewPrivileges|ProtectSystem|DeviceAllow|RestrictAddressFamilies|MemoryDenyWriteExecute)|Overall' | sed 's/^/    /'
check "systemd-analyze security rates the running unit (overall exposure below 5.0)" \
	eval 'level=$(echo "$sec" | sed -n "s/.*Overall exposure level for smhd.service: \([0-9.]*\).*/\1/p");
	echo "    exposure $level"; [ -n "$level" ] && [ "${level%%.*}" -lt 5 ]'
pid=$(main_pid)
show grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' "/proc/$pid/status"
check "smhd runs under a seccomp filter, no new privileges, only CAP_SYS_RAWIO" \
	eval 'grep -q "^Seccomp:[[:space:]]*2" /proc/$pid/status &&
	grep -q "^NoNewPrivs:[[:space:]]*1" /proc/$pid/status &&
	grep -q "^CapEff:[[:space:]]*0000000000020000" /proc/$pid/status'
show systemctl show -p DevicePolicy -p DeviceAllow -p SystemCallFilter smhd.service
# (ProtectClock= adds "char-rtc r": read-only.)
check "device policy: closed; /dev/mem the one device it may write (it serves from it below)" \
	eval '[ "$(systemctl show -p DevicePolicy --value smhd)" = closed ] &&
	systemctl show -p DeviceAllow --value smhd | grep -qx "/dev/mem rw" &&
	! systemctl show -p DeviceAllow --value smhd | grep -vx "/dev/mem rw" | grep -q "w\$"'

# ---- 5. group smh: members allocate, others get EACCES
useradd -m -G smh alice && useradd -m bob
out=$(runuser -u alice -- smhctl alloc --attr non-cacheable 64K 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
check "alice (group smh) allocates, writes and checks a buffer through smhd (devmem, seccomp)" \
	eval '[ $rc = 0 ] && echo "$out" | grep -q "pattern written and read back"'
out=$(runuser -u bob -- smhctl regions 2>&1)
echo "    $out"
check "bob (not in smh) is refused with EACCES and the documented message" \
	eval 'echo "$out" | grep -q "Permission denied" &&
	echo "$out" | grep -q "this user may not use the socket: ask to be added to its group"'

# ---- 6. the journal
show journalctl -b -u smhd --no-pager -o cat -n 8
check "journalctl -u smhd holds smhd's own lines (its regions)" \
	eval 'journalctl -b -u smhd -o cat | grep -q "Region heap-cacheable: cacheable"'

# ---- 7. systemctl restart while a client holds buffers (devmem, /dev/mem)
if start_client alice cacheable non-cacheable; then
	ok "alice's client holds a cacheable and a non-cacheable buffer (devmem)"
	old=$(main_pid)
	show systemctl restart smhd.service
	check "systemctl restart: a new smhd (pid $old -> $(main_pid))" \
		eval 'active smhd.service && [ "$(main_pid)" != "$old" ]'
	check "devmem: the client carries on with the same bytes after systemctl restart" \
		ask_client check
	check "the new smhd restored the buffers (journal: Restored 2 buffer(s))" \
		eval 'journalctl -b -u smhd -o cat | grep -q "Restored 2 buffer(s) held by 1 session"'

	# ---- 8. SIGSTOP: the watchdog restarts it
	old=$(main_pid)
	kill -STOP "$old"
	echo "  SIGSTOP to smhd (pid $old); waiting for the watchdog"
	check "the watchdog kills the stopped smhd and systemd restarts it" \
		wait_for 90 eval 'active smhd.service && [ "$(main_pid)" != 0 ] &&
		[ "$(main_pid)" != "$old" ]'
	show eval "journalctl -b -u smhd --no-pager -o cat | grep -iE 'watchdog timeout|Restored|Main process exited' | tail -n 4"
	check "devmem: the client resumes with the same bytes after the watchdog's restart" \
		ask_client check
	stop_client
else
	fail "alice's client could not hold buffers"
fi

# ---- 9. memfd regions across restarts: the service manager's fd store
mkdir -p /etc/systemd/system/smhd.service.d
cat >/etc/systemd/system/smhd.service.d/memfd.conf <<EOF
[Service]
ExecStart=
ExecStart=/usr/sbin/smhd --dtb /etc/smh/board.dtb --backend memfd
EOF
systemctl daemon-reload
systemctl restart smhd.service
show systemctl show -p FileDescriptorStoreMax -p ExecStart smhd.service
if start_client alice cacheable non-cacheable; then
	ok "alice's client holds a cacheable and a non-cacheable buffer (memfd)"
	show systemctl show -p NFileDescriptorStore smhd.service
	check "smhd put its 2 region memfds in the fd store (NFileDescriptorStore=2)" \
		eval '[ "$(systemctl show -p NFileDescriptorStore --value smhd)" = 2 ]'
	old=$(main_pid)
	show systemctl restart smhd.service
	check "memfd: the new smhd took the regions back from the fd store (no keeper)" \
		eval '[ "$(main_pid)" != "$old" ] && journalctl -b -u smhd -o cat |
		grep -q "The service manager.s fd store gave back 2 region(s)" &&
		! pgrep -f "smhd --keeper" >/dev/null'
	check "memfd: the client carries on with the same bytes (same memfd) after systemctl restart" \
		ask_client check
	old=$(main_pid)
	kill -STOP "$old"
	echo "  SIGSTOP to smhd (pid $old); waiting for the watchdog"
	check "memfd: the watchdog restarts the stopped smhd" \
		wait_for 90 eval 'active smhd.service && [ "$(main_pid)" != 0 ] &&
		[ "$(main_pid)" != "$old" ]'
	check "memfd: the client resumes with the same bytes after the watchdog's restart" \
		ask_client check
	stop_client
else
	fail "alice's client could not hold memfd buffers"
fi

# ---- 10. stop: nothing left
show systemctl stop smhd.socket smhd.service
check "systemctl stop: no smhd process is left (the keeper neither)" \
	eval '! pgrep -x smhd >/dev/null && ! pgrep -f "smhd --keeper" >/dev/null'
check "systemctl stop: no socket file is left in /run/smh" \
	eval '[ -z "$(find /run/smh -type s 2>/dev/null)" ]'
show ls -la /run/smh

echo "==== $n_failed check(s) failed"
if [ "$n_failed" -eq 0 ]; then
	echo "SMH SYSTEMD TEST: PASS"
else
	echo "SMH SYSTEMD TEST: FAIL"
fi
# Let journald hand the lines above to the console, then power off.
sleep 2
systemctl --no-block poweroff
