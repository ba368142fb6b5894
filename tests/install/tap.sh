# TAP helpers for the install checks (sourced by check-install and check-units).
n_tests=0
n_failed=0
tap_out=$(mktemp)

# check DESCRIPTION COMMAND...: runs COMMAND in this shell (a function may set variables),
# prints "ok"/"not ok" and, on failure, what it printed.
check() {
	desc=$1
	shift
	n_tests=$((n_tests + 1))
	if "$@" >"$tap_out" 2>&1; then
		echo "ok $n_tests - $desc"
	else
		n_failed=$((n_failed + 1))
		echo "not ok $n_tests - $desc"
		sed 's/^/# /' "$tap_out"
	fi
}

# finish: the plan, and the exit status.
finish() {
	rm -f "$tap_out"
	echo "1..$n_tests"
	[ "$n_failed" -eq 0 ]
}

# install_tree DESTDIR: meson install of the build under test into DESTDIR.
install_tree() {
	meson install -C "$SMH_BUILD_ROOT" --destdir "$1" --no-rebuild --quiet >"$1.log" 2>&1 ||
		{
			cat "$1.log" >&2
			return 1
		}
}

# silent COMMAND...: succeeds when COMMAND succeeds and prints nothing (on stdout or stderr).
silent() {
	out=$("$@" 2>&1) || {
		printf '%s\n' "$out"
		return 1
	}
	[ -z "$out" ] || {
		printf '%s\n' "$out"
		return 1
	}
}
